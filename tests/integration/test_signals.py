#!/usr/bin/env python3
"""GET /api/v1/signals against fixtures worked out by hand. Conversion:
purchase_completed, window 7d, people active in [D0, D5).

  P1  D0 product_viewed 10:00, cart_added 11:00, purchase 12:00
  P2  D1 product_viewed 10:00, cart_added 10:30, purchase 12:30
  P3  D1 product_viewed 10:00
  P4  D2 page_viewed 10:00
  P5  D2 newsletter_signed 09:00, purchase 10:00
  P6  D3 purchase 09:00, product_viewed 10:00

Population 6; converted within the window from their first event: P1 P2
P5 P6 (P6's first event is the purchase itself): 4.
product_viewed: did P1 P2 P3 P6 = 4; converted after it P1 P2 = 2 (P6
bought before); without: P4 P5 = 2, converted 1 (P5): 0.5 vs 0.5, lift 1;
to conversion 7200 s and 9000 s, median 8100.
cart_added: did P1 P2, both converted (3600 s, 7200 s: median 5400);
without 4, converted 2: 1.0 vs 0.5, lift 2.
newsletter_signed: did P5, converted (3600 s); without 5, converted 3: lift
1 / 0.6. Nothing is significant with so few people: sorted by lift.
The z-test values are computed here from the formula (statistics'
NormalDist for the p-value), independently of the daemon's C.

A second site-wide fixture (SignificanceCase): 40 people add to a wishlist
and 30 of them buy; 40 others only view a product and 8 of them buy."""

import math
import secrets
from datetime import timedelta
from statistics import NormalDist

import harness
from admin_api import api_call, key_entry, new_api_key, plan_doc
from harness import rfc3339, utcnow

READ = new_api_key("rk_sig")
PLAN = plan_doc(1, {
    "page_viewed": {"kind": "page"},
    "newsletter_signed": {"kind": "secondary"},
    "wishlist_added": {"kind": "secondary"},
    "product_viewed": {"kind": "milestone"},
    "cart_added": {"kind": "milestone"},
    "purchase_completed": {"kind": "macro"},
}, milestones=["product_viewed", "cart_added", "purchase_completed"])


def ztest(x1, n1, x2, n2):
    p = (x1 + x2) / (n1 + n2)
    se = math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return z, 2 * (1 - NormalDist().cdf(abs(z)))


class SignalsBase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "api_keys": [key_entry("read", "read", READ)]}
        super().setUpClass()
        cls.d0 = (utcnow() - timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
        cls.tag = secrets.token_hex(4)
        events = [{"event_id": harness.new_id(), "name": name, "anonymous_id": "%s-%s" % (who, cls.tag),
                   "ts": rfc3339(cls.d0 + timedelta(days=day, minutes=minute))}
                  for who, name, day, minute in cls.fixture()]
        for i in range(0, len(events), 400):
            assert cls.daemon.post_events({"batch": events[i:i + 400]}).status == 202

    def signals(self, **params):
        base = {"site": "shop", "from": self.d0.date().isoformat(),
                "to": (self.d0 + timedelta(days=4)).date().isoformat(), "window": "7d"}
        base.update(params)
        resp = api_call(self.daemon, "GET", "/api/v1/signals", key=READ,
                        params={k: v for k, v in base.items() if v is not None})
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        return resp


class SignalsCase(SignalsBase):
    @classmethod
    def fixture(cls):
        return [("P1", "product_viewed", 0, 600), ("P1", "cart_added", 0, 660), ("P1", "purchase_completed", 0, 720),
                ("P2", "product_viewed", 1, 600), ("P2", "cart_added", 1, 630),
                ("P2", "purchase_completed", 1, 750), ("P3", "product_viewed", 1, 600),
                ("P4", "page_viewed", 2, 600), ("P5", "newsletter_signed", 2, 540),
                ("P5", "purchase_completed", 2, 600), ("P6", "purchase_completed", 3, 540),
                ("P6", "product_viewed", 3, 600)]

    def test_signals(self):
        body = self.signals().body
        self.assertEqual(body["population"], {"people": 6, "converted": 4, "rate": 4 / 6})
        self.assertEqual(body["query"]["conversion"], "purchase_completed")
        s = {x["name"]: x for x in body["signals"]}
        self.assertEqual([x["name"] for x in body["signals"]],
                         ["cart_added", "newsletter_signed", "product_viewed", "wishlist_added"])
        pv = s["product_viewed"]
        self.assertEqual((pv["people"], pv["converted"], pv["people_without"], pv["converted_without"]),
                         (4, 2, 2, 1))
        self.assertEqual((pv["rate"], pv["rate_without"], pv["lift"], pv["median_seconds_to_conversion"]),
                         (0.5, 0.5, 1.0, 8100))
        ca = s["cart_added"]
        self.assertEqual((ca["people"], ca["converted"], ca["rate_without"], ca["lift"],
                          ca["median_seconds_to_conversion"]), (2, 2, 0.5, 2.0, 5400))
        z, p = ztest(2, 2, 2, 4)
        self.assertAlmostEqual(ca["z"], z, places=9)
        self.assertAlmostEqual(ca["p_value"], p, places=9)
        self.assertFalse(ca["significant"])
        self.assertTrue(ca["low_volume"])
        ns = s["newsletter_signed"]
        self.assertAlmostEqual(ns["lift"], 1 / 0.6, places=9)
        self.assertEqual((ns["kind"], ns["median_seconds_to_conversion"]), ("secondary", 3600))
        wl = s["wishlist_added"]
        self.assertEqual((wl["people"], wl["rate"], wl["lift"], wl["p_value"]), (0, None, None, None))
        self.assertNotIn("purchase_completed", s, "the conversion is no signal of itself")

    def test_other_conversion_and_errors(self):
        body = self.signals(conversion="cart_added").body
        self.assertEqual(body["population"]["converted"], 2)
        self.assertNotIn("cart_added", [x["name"] for x in body["signals"]])
        for params in ({"conversion": "Bad Name"}, {"window": "200d"}, {"from": "2026-13-01"}):
            with self.subTest(params=params):
                base = {"site": "shop"}
                base.update(params)
                resp = api_call(self.daemon, "GET", "/api/v1/signals", key=READ, params=base)
                self.assertError(resp, 400, "invalid_parameter")


class SignificanceCase(SignalsBase):
    @classmethod
    def fixture(cls):
        out = []
        for i in range(40):
            out.append(("W%d" % i, "wishlist_added", 0, i))
            if i < 30:
                out.append(("W%d" % i, "purchase_completed", 1, i))
            out.append(("V%d" % i, "product_viewed", 0, i))
            if i < 8:
                out.append(("V%d" % i, "purchase_completed", 1, i))
        return out

    def test_significant_first(self):
        body = self.signals().body
        names = [x["name"] for x in body["signals"]]
        wl = next(x for x in body["signals"] if x["name"] == "wishlist_added")
        z, p = ztest(30, 40, 8, 40)
        self.assertAlmostEqual(wl["z"], z, places=9)
        self.assertAlmostEqual(wl["p_value"], p, places=12)
        self.assertTrue(wl["significant"])
        self.assertAlmostEqual(wl["lift"], 0.75 / 0.2, places=9)
        self.assertEqual(names[0], "wishlist_added")
        pv = next(x for x in body["signals"] if x["name"] == "product_viewed")
        self.assertTrue(pv["significant"], "viewing only goes with fewer purchases here")
        self.assertLess(pv["lift"], 1)


if __name__ == "__main__":
    harness.main()
