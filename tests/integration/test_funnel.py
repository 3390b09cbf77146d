#!/usr/bin/env python3
"""GET /api/v1/funnel against a small fixture whose answers are worked out
by hand below: people P1..P11 of the example shop, steps product_viewed ->
cart_added -> purchase_completed, a one-day window, entries in
[T - 1h, T + 1h).

  P1   pv T, ca T+1h, pc T+2h                   3 steps (ordered and strict)
  P2   pv T, ca T+1h (currency USD)             2
  P3   pv T, pc T+1h, ca T+2h                   ordered 2 (pc before ca does not
                                                count); strict 1 (pc between)
  P4   pv T, ca T+1d exactly, pc T+1d+1s        2: the window end is inclusive,
                                                one second past is out
  P5   pv T as a5; identify a5=u5 T+10m;        3, one person across the login
       ca T+20m and pc T+30m as u5 only
  P6   pv, ca, pc from Googlebot                nothing: bots are left out
  P7   pv T, cart_viewed T+30m, ca T+1h,        ordered 3; strict 1 (cart_viewed
       pc T+2h                                  is a planned event between);
                                                gone with exclude=cart_viewed
  P9   ca T only                                never entered
  P10  pv T-1h-1s, ca T                         entered before from: not counted
  P11  pv T-1h exactly                          entered (from is inclusive), 1 step

ordered: entered 7, 6, 3. Times from the previous step, step 2: 20m, 1h,
1h, 1h, 2h, 24h -> median 3600 s, p90 (PostgreSQL's percentile_cont,
linear) 7200 + 0.5 * 79200 = 46800 s; step 3: 10m, 1h, 1h -> median and
p90 3600 s; from the first, step 3: 30m, 2h, 2h -> 7200 s.
strict: 7, 4 (P1 P2 P4 P5: an identify call is no action), 2 (P1 P5).   exclude=cart_viewed: 6, 5, 2.
cart_added[currency=USD] as step 2: 7, 1 (P2).
Channels of the entry's visit: P1 and P3 land from an email campaign, P2
from Google (and views in USD), the rest come direct: Direct 4, 3, 2;
Email 2, 2, 1; Organic Search 1, 1, 0; top=1 leaves Direct and (other)
3, 3, 1. order=any enters people at their first event of any step (P9 and
P10 too: 9 entrants) and counts k distinct steps in the window: 9, 6, 4.
unit=sessions: 7, 1, 0 (see test_sessions).
The Wilson intervals are computed here from the formula, independently of
the daemon's C."""

import json
import math
import os
import secrets
from datetime import timedelta

import harness
from admin_api import api_call, key_entry, new_api_key
from harness import rfc3339, utcnow

PLAN = harness.read_example_plan()
READ = new_api_key("rk_funnel")
CONSENT = {"analytics": True}
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PROPS = {
    "product_viewed": {"product_id": "P-1", "price": 10.0, "currency": "EUR"},
    "cart_added": {"product_id": "P-1", "quantity": 1, "currency": "EUR"},
    "purchase_completed": {"order_id": "O-1", "revenue": 10.0, "currency": "EUR", "item_count": 1},
    "cart_viewed": {"cart_id": "C-1"},
}
STEPS = "product_viewed,cart_added,purchase_completed"
Z = 1.959963984540054


def wilson(x, n):
    p = x / n
    d = 1 + Z * Z / n
    c = (p + Z * Z / (2 * n)) / d
    h = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


class FunnelCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN),
                             "pii_hash_key": "funnel-test-pii-key-0123456789ab",
                             "api_keys": [key_entry("read", "read", READ)]}
        super().setUpClass()
        # Noon, so that the whole fixture falls in one week and month.
        t = (utcnow() - timedelta(days=5)).replace(hour=12, minute=0, second=0, microsecond=0)
        cls.T = t
        run = secrets.token_hex(4)
        h = timedelta(hours=1)

        def e(name, who, at, props=None, user=None, **fields):
            return harness.person_event(run, name, who, at, user=user,
                                        props=dict(props or PROPS.get(name, {})), **fields)

        usd = dict(PROPS["cart_added"], currency="USD")
        email = "https://shop.example/p/1?utm_source=news&utm_medium=email&utm_campaign=nov"
        people = [
            [e("product_viewed", "a1", t, url=email), e("cart_added", "a1", t + h),
             e("purchase_completed", "a1", t + 2 * h)],
            [e("product_viewed", "a2", t, dict(PROPS["product_viewed"], currency="USD"),
               url="https://shop.example/p/1", referrer="https://www.google.com/"),
             e("cart_added", "a2", t + h, usd)],
            [e("product_viewed", "a3", t, url=email), e("purchase_completed", "a3", t + h),
             e("cart_added", "a3", t + 2 * h)],
            [e("product_viewed", "a4", t), e("cart_added", "a4", t + timedelta(days=1)),
             e("purchase_completed", "a4", t + timedelta(days=1, seconds=1))],
            [e("product_viewed", "a5", t),
             {"type": "identify", "event_id": harness.new_id(), "anonymous_id": "a5-" + run,
              "user_id": "u5-" + run, "ts": rfc3339(t + timedelta(minutes=10)), "consent": CONSENT},
             e("cart_added", None, t + timedelta(minutes=20), user="u5"),
             e("purchase_completed", None, t + timedelta(minutes=30), user="u5")],
            [e("product_viewed", "a7", t), e("cart_viewed", "a7", t + h / 2), e("cart_added", "a7", t + h),
             e("purchase_completed", "a7", t + 2 * h)],
            [e("cart_added", "a9", t)],
            [e("product_viewed", "a10", t - h - timedelta(seconds=1)), e("cart_added", "a10", t)],
            [e("product_viewed", "a11", t - h)],
        ]
        for events in people:
            resp = cls.daemon.post_events({"batch": events}, headers={"User-Agent": CHROME})
            assert resp.status == 202 and resp.body["accepted"] == len(events), resp
        bots = [e("product_viewed", "a6", t), e("cart_added", "a6", t + h), e("purchase_completed", "a6", t + 2 * h)]
        resp = cls.daemon.post_events({"batch": bots}, headers={"User-Agent": GOOGLEBOT})
        assert resp.status == 202, resp

    def funnel(self, **params):
        base = {"site": "shop", "steps": STEPS, "window": "1d",
                "from": rfc3339(self.T - timedelta(hours=1)), "to": rfc3339(self.T + timedelta(hours=1))}
        base.update(params)
        return api_call(self.daemon, "GET", "/api/v1/funnel", key=READ,
                        params={k: v for k, v in base.items() if v is not None})

    def entered(self, resp):
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        return [s["entered"] for s in resp.body["steps"]]

    def test_ordered(self):
        resp = self.funnel()
        self.assertEqual(self.entered(resp), [7, 6, 3])
        s = resp.body["steps"]
        self.assertEqual([x["name"] for x in s], STEPS.split(","))
        self.assertEqual([x["drop_off"] for x in s], [1, 3, 0])
        self.assertIsNone(s[0]["conversion_from_previous"])
        for step, (x, prev, first) in zip(s[1:], [(6, 7, 7), (3, 6, 7)]):
            for key, n in (("conversion_from_previous", prev), ("conversion_from_first", first)):
                lo, hi = wilson(x, n)
                got = step[key]
                self.assertAlmostEqual(got["rate"], x / n, places=9)
                self.assertAlmostEqual(got["lo"], lo, places=9)
                self.assertAlmostEqual(got["hi"], hi, places=9)
        self.assertEqual(s[1]["seconds_from_previous"], {"median": 3600, "p90": 46800})
        self.assertEqual(s[2]["seconds_from_previous"], {"median": 3600, "p90": 3600})
        self.assertEqual(s[2]["seconds_from_first"], {"median": 7200, "p90": 7200})
        self.assertTrue(resp.body["low_volume"], "7 entrants is below min_volume 100")
        q = resp.body["query"]
        self.assertEqual((q["window"], q["order"], q["steps_from"], q["exclude"], q["min_volume"]),
                         ("1d", "ordered", "request", [], 100))

    def test_numbers_read_as_written(self):
        """Reals are the shortest text that reads back as the same double
        (6/7 is 0.8571428571428571, not 0.85714285714285710)."""
        resp = self.funnel()
        reals = []
        json.loads(resp.raw, parse_float=lambda text: reals.append(text) or float(text))
        self.assertTrue(reals, "the funnel has rates")
        self.assertIn(repr(6 / 7), reals)
        self.assertEqual([t for t in reals if repr(float(t)) != t], [], "not the shortest text")

    def test_docs_give_the_z_used(self):
        """docs/api.md states the z of the Wilson interval the answers use."""
        with open(os.path.join(harness.REPO_ROOT, "docs", "api.md")) as f:
            self.assertIn("z = %r" % Z, f.read())

    def test_strict(self):
        self.assertEqual(self.entered(self.funnel(order="strict")), [7, 4, 2])

    def test_exclude(self):
        resp = self.funnel(exclude="cart_viewed")
        self.assertEqual(self.entered(resp), [6, 5, 2])
        self.assertEqual(resp.body["query"]["exclude"], ["cart_viewed"])

    def test_step_filter(self):
        resp = self.funnel(steps="product_viewed,cart_added[currency=USD]")
        self.assertEqual(self.entered(resp), [7, 1])
        self.assertEqual(resp.body["steps"][1]["filter"], {"property": "currency", "value": "USD"})

    def group(self, resp, value):
        for g in resp.body["groups"]:
            if g["value"] == value:
                return [s["entered"] for s in g["steps"]]
        self.fail("no group %r in %r" % (value, resp.body["groups"]))

    def test_breakdown_by_channel(self):
        # Email: P1 P3; Organic Search: P2; Direct: P4 P5 P7 P11.
        resp = self.funnel(breakdown="channel")
        self.assertEqual(self.entered(resp), [7, 6, 3], "the overall funnel stays")
        self.assertEqual([g["value"] for g in resp.body["groups"]], ["Direct", "Email", "Organic Search"])
        self.assertEqual(self.group(resp, "Direct"), [4, 3, 2])
        self.assertEqual(self.group(resp, "Email"), [2, 2, 1])
        self.assertEqual(self.group(resp, "Organic Search"), [1, 1, 0])
        self.assertTrue(all(g["low_volume"] for g in resp.body["groups"]))
        top1 = self.funnel(breakdown="channel", top="1")
        self.assertEqual([g["value"] for g in top1.body["groups"]], ["Direct", "(other)"])
        self.assertEqual(self.group(top1, "(other)"), [3, 3, 1])

    def test_breakdown_by_property_of_the_first_step(self):
        resp = self.funnel(breakdown="prop:currency")
        self.assertEqual(self.group(resp, "EUR"), [6, 5, 3])
        self.assertEqual(self.group(resp, "USD"), [1, 1, 0])
        self.assertEqual(resp.body["query"]["breakdown"], "prop:currency")

    def test_filters(self):
        self.assertEqual(self.entered(self.funnel(filter="channel=Email")), [2, 2, 1])
        self.assertEqual(self.entered(self.funnel(filter="prop:currency=USD")), [1, 1, 0])
        # The most parameters a request can make: five property filters and
        # a property breakdown.
        most = self.funnel(filter=",".join("prop:k%d=v" % i for i in range(5)), breakdown="prop:currency")
        self.assertEqual(self.entered(most), [0, 0, 0])
        resp = self.funnel(filter="channel=Direct,utm_source=nope")
        self.assertEqual(self.entered(resp), [0, 0, 0])
        self.assertEqual(resp.body["query"]["filter"], {"channel": "Direct", "utm_source": "nope"})

    def test_cohorts(self):
        monday = (self.T - timedelta(days=self.T.weekday())).date().isoformat()
        resp = self.funnel(cohort="week")
        self.assertEqual([g["value"] for g in resp.body["groups"]], [monday])
        self.assertEqual(self.group(resp, monday), [7, 6, 3])
        month = self.funnel(cohort="month")
        self.assertEqual([g["value"] for g in month.body["groups"]], [self.T.date().replace(day=1).isoformat()])

    def test_sessions(self):
        # Steps an hour apart fall in different visits (30 minute timeout):
        # only P7, whose events came 30 minutes apart, goes on within one
        # session. P5's cart and purchase carried only a user id (sent by
        # a server): a visit of their own, not the browser's.
        resp = self.funnel(unit="sessions")
        self.assertEqual(self.entered(resp), [7, 1, 0])
        self.assertEqual(resp.body["query"]["unit"], "sessions")

    def test_any_order(self):
        # Entry at the first event of any step: P9 and P10 enter with
        # cart_added. Step k: k of the steps within the window.
        self.assertEqual(self.entered(self.funnel(order="any")), [9, 6, 4])

    def test_window_edge(self):
        # A window one second short of a day drops P4's cart_added.
        self.assertEqual(self.entered(self.funnel(window="23h")), [7, 5, 3])

    def test_plan_funnel_by_default(self):
        """Without steps, the framework's funnel: a step per phase up to the
        macro conversion's, reached by any of its milestones, then the
        macro conversion. People who never search are counted."""
        resp = self.funnel(steps=None)
        self.assertEqual([(s["name"], s["events"]) for s in resp.body["steps"]],
                         [("discover", ["search_performed", "product_viewed"]),
                          ("consider", ["cart_added", "cart_viewed"]),
                          ("decide", ["checkout_started", "shipping_added", "payment_added"]),
                          ("purchase_completed", ["purchase_completed"])])
        self.assertEqual(resp.body["query"]["steps_from"], "plan")
        # Nobody here checks out: the decide phase loses everyone.
        self.assertEqual(self.entered(resp), [7, 6, 0, 0])

    def test_step_sets(self):
        """A step may be a set of events: any of them reaches it, in every
        order mode and in breakdowns."""
        sets = "search_performed|product_viewed,cart_added|cart_viewed,purchase_completed"
        resp = self.funnel(steps=sets)
        self.assertEqual([s["name"] for s in resp.body["steps"]], sets.split(","))
        self.assertEqual(resp.body["steps"][1]["events"], ["cart_added", "cart_viewed"])
        self.assertEqual(self.entered(resp), [7, 6, 3], "as product_viewed,cart_added,... here")
        # Entering by either cart event before to (T + 1h, exclusive): P5
        # (cart_added at +20 min), P7 (cart_viewed at +30 min), P9 and P10;
        # P5 and P7 then buy.
        self.assertEqual(self.entered(self.funnel(steps="cart_viewed|cart_added,purchase_completed")), [4, 2])
        self.assertEqual(self.entered(self.funnel(steps="cart_added,purchase_completed")), [3, 1],
                         "cart_added alone: P5, P9, P10; P5 buys")
        self.assertEqual(self.entered(self.funnel(steps=sets, order="any")),
                         self.entered(self.funnel(steps=STEPS, order="any")))
        grouped = self.funnel(steps=sets, breakdown="channel")
        self.assertEqual(self.group(grouped, "Direct"), [4, 3, 2])
        for bad in ("a_b|,c_d", "|a_b,c_d", "|".join("e_%d" % i for i in range(17)) + ",c_d"):
            with self.subTest(steps=bad):
                self.assertError(self.funnel(steps=bad), 400, "invalid_parameter")

    def test_parameters_are_checked(self):
        for params, needle in (({"steps": "product_viewed"}, "at least"),
                               ({"steps": "a_b,c_d[x]"}, "filter"),
                               ({"window": "181d"}, "window"),
                               ({"window": "5m"}, "window"),
                               ({"order": "sideways"}, "order"),
                               ({"from": "yesterday"}, "from"),
                               ({"from": "2026-11-02", "to": "2026-11-01"}, "before"),
                               ({"exclude": "Bad Name"}, "exclude"),
                               ({"exclude": "cart_added|cart_viewed"}, "exclude"),
                               ({"breakdown": "country"}, "breakdown"),
                               ({"breakdown": "prop:a-b"}, "breakdown"),
                               ({"breakdown": "channel", "cohort": "week"}, "combined"),
                               ({"cohort": "day"}, "cohort"),
                               ({"top": "0"}, "top"),
                               ({"filter": "channel"}, "filter"),
                               ({"filter": "channel="}, "filter"),
                               ({"unit": "visits"}, "unit")):
            with self.subTest(params=params):
                resp = self.funnel(**params)
                self.assertError(resp, 400, "invalid_parameter")
                self.assertIn(needle, resp.body["error"]["message"])
        self.assertError(api_call(self.daemon, "GET", "/api/v1/funnel", params={"site": "shop"}),
                         401, "missing_api_key")


class MinVolumeCase(harness.DaemonTestCase):
    daemon_config = {"api_keys": [key_entry("read", "read", READ)], "min_volume": 1}

    def test_low_volume_follows_the_setting(self):
        ev = harness.make_event(name="product_viewed")
        self.assertEqual(self.daemon.post_events(ev).status, 202)
        resp = api_call(self.daemon, "GET", "/api/v1/funnel", key=READ,
                        params={"site": "shop", "steps": "product_viewed,cart_added"})
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertEqual([s["entered"] for s in resp.body["steps"]], [1, 0])
        self.assertFalse(resp.body["low_volume"])
        self.assertEqual(resp.body["query"]["min_volume"], 1)


if __name__ == "__main__":
    harness.main()
