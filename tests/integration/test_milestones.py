#!/usr/bin/env python3
"""GET /api/v1/milestones against a fixture worked out by hand: days D0, D1,
D2 (four to two days ago, UTC), asked with from=D0, to=D2 (a date: to the end
of D2), interval=day.

  A    D0 product_viewed x2, cart_added; D1 product_viewed
  B    D0 product_viewed; D2 purchase_completed
  C    D1 cart_added
  D    D2 page_viewed
  bot  D0 product_viewed (Googlebot: left out)

People with any event: D0 2 (A B), D1 2 (A C), D2 2 (B D).
product_viewed: D0 2 people, 3 events, rate 1.0; D1 1, 1, 0.5; D2 0, 0, 0.
cart_added: D0 1 (0.5), D1 1 (0.5), D2 0.  purchase_completed: D2 1 (0.5).
Targets (period day): the last complete day before `to` is D2.
  product_viewed  baseline 0.4, target 0.6: rate 0, attainment 0 %,
                  progress (0 - 0.4) / 0.2 = -200 %, behind
  purchase_completed baseline 0.3, target 0.5: rate 0.5, attainment 100 %,
                  progress 100 %, on track
cart_added has no target; page_viewed is a page event (no phase)."""

import secrets
from datetime import timedelta

import harness
from admin_api import api_call, key_entry, new_api_key, plan_doc
from harness import rfc3339, utcnow

READ = new_api_key("rk_ms")
PLAN = plan_doc(1, {
    "page_viewed": {"kind": "page", "owner": "web@example.com"},
    "product_viewed": {"kind": "milestone", "owner": "shop@example.com",
                       "target": {"baseline": 0.4, "target": 0.6, "period": "day",
                                  "owner": "growth@example.com"}},
    "cart_added": {"kind": "milestone"},
    "purchase_completed": {"kind": "macro",
                           "target": {"baseline": 0.3, "target": 0.5, "period": "day"}},
}, milestones=["product_viewed", "cart_added", "purchase_completed"])
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


class MilestonesCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "api_keys": [key_entry("read", "read", READ)]}
        super().setUpClass()
        d0 = (utcnow() - timedelta(days=4)).replace(hour=0, minute=0, second=0, microsecond=0)
        cls.days = [d0 + timedelta(days=i) for i in range(3)]
        run = secrets.token_hex(4)

        def e(name, who, day, hour):
            return {"event_id": harness.new_id(), "name": name, "anonymous_id": "%s-%s" % (who, run),
                    "ts": rfc3339(cls.days[day] + timedelta(hours=hour))}

        events = [e("product_viewed", "A", 0, 9), e("product_viewed", "A", 0, 10), e("cart_added", "A", 0, 11),
                  e("product_viewed", "A", 1, 9), e("product_viewed", "B", 0, 12),
                  e("purchase_completed", "B", 2, 8), e("cart_added", "C", 1, 15), e("page_viewed", "D", 2, 20)]
        assert cls.daemon.post_events({"batch": events}).status == 202
        bot = e("product_viewed", "bot", 0, 9)
        assert cls.daemon.post_events(bot, headers={"User-Agent": GOOGLEBOT}).status == 202

    def get(self, **params):
        base = {"site": "shop", "from": self.days[0].date().isoformat(),
                "to": self.days[2].date().isoformat(), "interval": "day"}
        base.update(params)
        return api_call(self.daemon, "GET", "/api/v1/milestones", key=READ,
                        params={k: v for k, v in base.items() if v is not None})

    def by_name(self, resp):
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        return {m["name"]: m for m in resp.body["milestones"]}

    def test_counts_and_rates(self):
        resp = self.get()
        days = [d.date().isoformat() for d in self.days]
        self.assertEqual([(p["start"], p["active_people"], p["complete"]) for p in resp.body["periods"]],
                         [(d, 2, True) for d in days])
        m = self.by_name(resp)
        self.assertEqual(list(m), ["product_viewed", "cart_added", "purchase_completed", "page_viewed"],
                         "milestones in phase order, then the other events")
        self.assertEqual([(p["people"], p["events"], p["rate"]) for p in m["product_viewed"]["periods"]],
                         [(2, 3, 1.0), (1, 1, 0.5), (0, 0, 0.0)])
        self.assertEqual([p["rate"] for p in m["cart_added"]["periods"]], [0.5, 0.5, 0.0])
        self.assertEqual([p["people"] for p in m["purchase_completed"]["periods"]], [0, 0, 1])
        self.assertEqual((m["product_viewed"]["kind"], m["product_viewed"]["phase"], m["product_viewed"]["owner"]),
                         ("milestone", "decide", "shop@example.com"))
        self.assertEqual((m["page_viewed"]["kind"], m["page_viewed"]["phase"]), ("page", None))

    def test_targets(self):
        m = self.by_name(self.get())
        pv = m["product_viewed"]["target"]
        d2 = self.days[2].date().isoformat()
        d3 = (self.days[2] + timedelta(days=1)).date().isoformat()
        self.assertEqual((pv["period"], pv["last_period"], pv["people"], pv["active_people"], pv["rate"]),
                         ("day", {"from": d2, "to": d3}, 0, 2, 0.0))
        self.assertEqual((pv["baseline"], pv["target"], pv["owner"], pv["pace"]),
                         (0.4, 0.6, "growth@example.com", "behind"))
        self.assertAlmostEqual(pv["attainment_pct"], 0.0)
        self.assertAlmostEqual(pv["progress_pct"], -200.0)
        pc = m["purchase_completed"]["target"]
        self.assertEqual((pc["rate"], pc["pace"], pc["owner"]), (0.5, "on_track", None))
        self.assertAlmostEqual(pc["attainment_pct"], 100.0)
        self.assertAlmostEqual(pc["progress_pct"], 100.0)
        self.assertIsNone(m["cart_added"]["target"])

    def test_names_and_weeks(self):
        m = self.by_name(self.get(names="cart_added,product_viewed", interval="week"))
        self.assertEqual(list(m), ["cart_added", "product_viewed"])
        weeks = {p["start"] for p in m["product_viewed"]["periods"]}
        self.assertTrue(all(harness.datetime.fromisoformat(w).weekday() == 0 for w in weeks), weeks)
        self.assertEqual(sum(p["events"] for p in m["product_viewed"]["periods"]), 4)

    def test_parameters_are_checked(self):
        for params, needle, code in (({"interval": "hour"}, "interval", "invalid_parameter"),
                                     ({"names": "nope"}, "not an event", "unknown_event"),
                                     ({"from": "2026-11-02", "to": "2026-11-01"}, "before", "invalid_parameter"),
                                     ({"from": "2020-01-01", "to": "2026-01-01"}, "periods", "invalid_parameter")):
            with self.subTest(params=params):
                resp = self.get(**params)
                self.assertError(resp, 400, code)
                self.assertIn(needle, resp.body["error"]["message"])


if __name__ == "__main__":
    harness.main()
