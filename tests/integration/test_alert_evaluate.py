#!/usr/bin/env python3
"""POST /api/v1/alerts/rules/{id}/evaluate: each metric measured over its
last complete periods by the query API's own statements, and each
condition's verdict, against a fixture worked out by hand. D is today
(UTC), D-k the day k days before.

Site shop:
  cart_added by distinct people at noon: D-9..D-2: 10 12 8 10 12 8 10 10,
  D-1: 2 people (one of them twice: 3 events).
  checkout_started by 10 people at D-2 10:00; 3 of them buy at D-2 20:00,
  a 4th at D-1 10:00:01 (one second past the 1-day window).

  count people, stall 50% of 4    history 12 8 10 10 (mean 10): 2 fires
  count people, anomaly 8, k 3    mean 10, sigma sqrt(16/7): 2 fires
  count people, below 1           2 is not below 1: ok
  count people, min_volume 5      2 people: insufficient_data
  count events, above 2           3 events fire
  conversion_rate, window 1d      the last complete period is D-2 (its
                                  window ends within D-1): 3/10 = 0.3,
                                  below 0.5 fires
  funnel_completion, same steps   0.3, above 0.2 fires

Notified evaluations (notify=true) store the state and each transition:
cart_viewed by 2 people on D-1 against "below 5" fires; 5 more people
resolve it; the next judgement is ok again.

Site blog: last week (Monday to Monday, UTC), 20 people view a page, one
of them adds to the cart: 1/20 = 0.05 against cart_added's target 0.10
(week): 50% behind, more than 10%: target_pace fires."""

from datetime import timedelta

import harness
from admin_api import api_call, key_entry, new_api_key
from harness import BLOG_KEY, utcnow

PLAN = harness.read_example_plan()
ADMIN = new_api_key("ak_eval")
PROPS = {
    "cart_added": {"product_id": "P-1", "quantity": 1, "currency": "EUR"},
    "checkout_started": {"cart_id": "C-1", "item_count": 1, "cart_value": 10.0, "currency": "EUR"},
    "purchase_completed": {"order_id": "O-1", "revenue": 10.0, "currency": "EUR", "item_count": 1},
    "page_viewed": {},
    "cart_viewed": {},
}
RULES = "/api/v1/alerts/rules"
HISTORY = [10, 12, 8, 10, 12, 8, 10, 10]


class EvaluateCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "pii_hash_key": "eval-test-pii-key-0123456789abcd",
                             "api_keys": [key_entry("admin", "admin", ADMIN)]}
        super().setUpClass()
        d0 = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        cls.d0 = d0
        run = harness.new_id()[:8]
        events = []

        def e(name, who, at):
            return harness.person_event(run, name, who, at, props=dict(PROPS[name]))

        for k, n in zip(range(9, 1, -1), HISTORY):
            events += [e("cart_added", "d%d-%d" % (k, i), d0 - timedelta(days=k, hours=-12)) for i in range(n)]
        noon = d0 - timedelta(days=1, hours=-12)
        events += [e("cart_added", "y0", noon), e("cart_added", "y0", noon + timedelta(minutes=5)),
                   e("cart_added", "y1", noon)]
        at = d0 - timedelta(days=2, hours=-10)
        for i in range(10):
            events.append(e("checkout_started", "c%d" % i, at))
        for i in range(3):
            events.append(e("purchase_completed", "c%d" % i, at + timedelta(hours=10)))
        events.append(e("purchase_completed", "c3", at + timedelta(days=1, seconds=1)))
        events += [e("cart_viewed", "v%d" % i, noon) for i in range(2)]
        cls.tag, cls.noon = run, noon
        for i in range(0, len(events), 200):
            resp = cls.daemon.post_events({"batch": events[i:i + 200]})
            assert resp.status == 202 and resp.body["accepted"] == len(events[i:i + 200]), resp
        monday = d0 - timedelta(days=d0.weekday()) - timedelta(days=7)
        blog = [e("page_viewed", "b%d" % i, monday + timedelta(days=1, hours=12)) for i in range(20)]
        blog.append(e("cart_added", "b0", monday + timedelta(days=1, hours=13)))
        resp = cls.daemon.post_events({"batch": blog}, key=BLOG_KEY)
        assert resp.status == 202 and resp.body["accepted"] == len(blog), resp

    def evaluate(self, rule, site="shop"):
        resp = api_call(self.daemon, "POST", RULES, key=ADMIN, params={"site": site}, body=rule)
        self.assertEqual(resp.status, 201, "%r" % (resp,))
        path = "%s/%d/evaluate" % (RULES, resp.body["id"])
        resp = api_call(self.daemon, "POST", path, key=ADMIN, params={"site": site})
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertFalse(resp.body["notified"])
        return resp.body["evaluation"]

    def rule(self, name, metric, condition, **more):
        r = {"name": name, "owner": "test@example.com", "metric": metric, "condition": condition, "min_volume": 1}
        r.update(more)
        return r

    def test_stall_of_a_count(self):
        ev = self.evaluate(self.rule("stall", {"type": "count", "event": "cart_added", "unit": "people"},
                                     {"kind": "stall", "below_percent": 50, "trailing": 4}))
        self.assertEqual((ev["verdict"], ev["value"], ev["volume"], ev["baseline"], ev["bound"]),
                         ("firing", 2, 2, 10, 5))
        self.assertEqual([h["value"] for h in ev["history"]], [12, 8, 10, 10])
        self.assertEqual(ev["period"]["start"], harness.rfc3339(self.d0 - timedelta(days=1), "microseconds"))

    def test_anomaly_of_a_count(self):
        ev = self.evaluate(self.rule("anomaly", {"type": "count", "event": "cart_added", "unit": "people"},
                                     {"kind": "anomaly", "trailing": 8, "k": 3}))
        sigma = (16 / 7) ** 0.5
        self.assertEqual((ev["verdict"], ev["value"], ev["baseline"]), ("firing", 2, 10))
        self.assertAlmostEqual(ev["sigma"], sigma, places=9)
        self.assertAlmostEqual(ev["bound"], 10 - 3 * sigma, places=9)
        self.assertEqual([h["value"] for h in ev["history"]], HISTORY)

    def test_threshold_ok_and_minimum_volume(self):
        ev = self.evaluate(self.rule("ok", {"type": "count", "event": "cart_added", "unit": "people"},
                                     {"kind": "threshold", "below": 1}))
        self.assertEqual((ev["verdict"], ev["value"]), ("ok", 2))
        # min_volume guards a rate's denominator: 10 people are too few for 11.
        ev = self.evaluate(self.rule("thin", {"type": "conversion_rate", "from": "checkout_started",
                                              "to": "purchase_completed", "window": "1d"},
                                     {"kind": "threshold", "below": 0.5}, min_volume=11))
        self.assertEqual((ev["verdict"], ev["volume"]), ("insufficient_data", 10))
        # A count is its own volume: judged however small.
        ev = self.evaluate(self.rule("small", {"type": "count", "event": "cart_added", "unit": "people"},
                                     {"kind": "threshold", "above": 0}, min_volume=5))
        self.assertEqual((ev["verdict"], ev["value"], ev["volume"]), ("firing", 2, 2))

    def test_count_of_events(self):
        ev = self.evaluate(self.rule("events", {"type": "count", "event": "cart_added"},
                                     {"kind": "threshold", "above": 2}))
        self.assertEqual((ev["verdict"], ev["value"], ev["volume"]), ("firing", 3, 3))

    def test_conversion_rate_waits_for_its_window(self):
        ev = self.evaluate(self.rule("rate", {"type": "conversion_rate", "from": "checkout_started",
                                              "to": "purchase_completed", "window": "1d"},
                                     {"kind": "threshold", "below": 0.5}))
        self.assertEqual((ev["verdict"], ev["value"], ev["volume"], ev["bound"]), ("firing", 0.3, 10, 0.5))
        self.assertEqual(ev["period"]["start"], harness.rfc3339(self.d0 - timedelta(days=2), "microseconds"))

    def test_funnel_completion(self):
        ev = self.evaluate(self.rule("funnel", {"type": "funnel_completion",
                                                "steps": ["checkout_started", "purchase_completed"], "window": "1d"},
                                     {"kind": "threshold", "above": 0.2}))
        self.assertEqual((ev["verdict"], ev["value"], ev["volume"]), ("firing", 0.3, 10))

    def test_target_pace(self):
        ev = self.evaluate(self.rule("pace", {"type": "count", "event": "cart_added"},
                                     {"kind": "target_pace", "behind_percent": 10}), site="blog")
        self.assertEqual((ev["verdict"], ev["value"], ev["volume"], ev["baseline"]), ("firing", 0.05, 20, 0.1))
        self.assertAlmostEqual(ev["bound"], 0.09, places=12)

    def judge(self, rule_id, notify):
        resp = api_call(self.daemon, "POST", "%s/%d/evaluate" % (RULES, rule_id), key=ADMIN,
                        params={"site": "shop", "notify": notify})
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        return resp.body

    def test_transitions_are_stored(self):
        resp = api_call(self.daemon, "POST", RULES, key=ADMIN, params={"site": "shop"},
                        body=self.rule("viewed", {"type": "count", "event": "cart_viewed", "unit": "people"},
                                       {"kind": "threshold", "below": 5}))
        rid = resp.body["id"]
        dry = self.judge(rid, "false")
        self.assertEqual((dry["state"], dry["recorded"], dry["event_id"]), ({"from": "ok", "to": "firing"}, False, None))
        fired = self.judge(rid, "true")
        self.assertEqual((fired["state"], fired["recorded"]), ({"from": "ok", "to": "firing"}, True))
        self.assertIsInstance(fired["event_id"], int)
        again = self.judge(rid, "true")
        self.assertEqual((again["state"], again["event_id"]), ({"from": "firing", "to": "firing"}, None))
        states = api_call(self.daemon, "GET", "/api/v1/alerts", key=ADMIN, params={"site": "shop"}).body
        mine = [a for a in states["alerts"] if a["id"] == rid][0]
        self.assertEqual((mine["state"], mine["value"], mine["bound"], mine["severity"]), ("firing", 2, 5, "warning"))
        self.assertEqual(mine["period_start"][:10], (self.d0 - timedelta(days=1)).date().isoformat())
        events = [harness.person_event(self.tag, "cart_viewed", "w%d" % i, self.noon, props={}) for i in range(5)]
        self.assertEqual(self.daemon.post_events({"batch": events}).status, 202)
        resolved = self.judge(rid, "true")
        self.assertEqual((resolved["state"], resolved["evaluation"]["value"]), ({"from": "firing", "to": "resolved"}, 7))
        ok = self.judge(rid, "true")
        self.assertEqual(ok["state"], {"from": "resolved", "to": "ok"})
        history = api_call(self.daemon, "GET", "/api/v1/alerts/events", key=ADMIN,
                           params={"site": "shop", "rule": rid}).body["events"]
        self.assertEqual([(h["from"], h["to"]) for h in history],
                         [("resolved", "ok"), ("firing", "resolved"), ("ok", "firing")])
        self.assertEqual((history[2]["value"], history[2]["bound"], history[2]["rule_name"]), (2, 5, "viewed"))
        self.assertEqual(history[2]["why"], "2 is below 5")
        firing = api_call(self.daemon, "GET", "/api/v1/alerts/events", key=ADMIN,
                          params={"site": "shop", "rule": rid, "state": "firing"}).body["events"]
        self.assertEqual([h["id"] for h in firing], [fired["event_id"]])
        for params in ({"rule": "x"}, {"state": "burning"}, {"limit": "0"}, {"limit": "1001"}):
            with self.subTest(params=params):
                resp = api_call(self.daemon, "GET", "/api/v1/alerts/events", key=ADMIN,
                                params=dict(params, site="shop"))
                self.assertError(resp, 400, "invalid_parameter")
        resp = api_call(self.daemon, "POST", "%s/%d/evaluate" % (RULES, rid), key=ADMIN,
                        params={"site": "shop", "notify": "yes"})
        self.assertError(resp, 400, "invalid_parameter")

    def test_paths(self):
        for path in ("/api/v1/alerts/rules/1/evaluat", "/api/v1/alerts/rules/x/evaluate",
                     "/api/v1/alerts/rules//evaluate", "/api/v1/alerts/rules/999999/evaluate"):
            with self.subTest(path=path):
                resp = api_call(self.daemon, "POST", path, key=ADMIN, params={"site": "shop"})
                self.assertError(resp, 404, "not_found")


class ResolveCase(harness.DaemonTestCase):
    """Each condition driven to fire, then to resolve by events added to the
    period it judges (evaluated with notify=true, as the evaluator would):
      stall, wishlist_added people: D-5..D-2 10 each, D-1 2 -> fires
          (below 50% of 10); 4 more on D-1 -> 6 -> resolved;
      anomaly, cart_updated people: D-9..D-2 as HISTORY, D-1 2 -> fires;
          8 more -> 10, on the mean -> resolved;
      target_pace, site blog: 20 people last week, 1 adds to the cart
          (0.05, 50% behind 0.10) -> fires; a 2nd -> 0.10 -> resolved."""

    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "pii_hash_key": "resolve-pii-key-0123456789abcdef",
                             "alert_evaluation_interval_s": 3600,
                             "api_keys": [key_entry("admin", "admin", ADMIN)]}
        super().setUpClass()
        d0 = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
        cls.tag = harness.new_id()[:8]
        cls.yesterday = d0 - timedelta(days=1, hours=-12)
        cls.monday = d0 - timedelta(days=d0.weekday()) - timedelta(days=7)
        shop = []
        for k in range(5, 1, -1):
            shop += [cls.e("wishlist_added", "w%d-%d" % (k, i), d0 - timedelta(days=k, hours=-12)) for i in range(10)]
        for k, n in zip(range(9, 1, -1), HISTORY):
            shop += [cls.e("cart_updated", "u%d-%d" % (k, i), d0 - timedelta(days=k, hours=-12)) for i in range(n)]
        shop += [cls.e("wishlist_added", "wy%d" % i, cls.yesterday) for i in range(2)]
        shop += [cls.e("cart_updated", "uy%d" % i, cls.yesterday) for i in range(2)]
        cls.post(shop)
        blog = [cls.e("page_viewed", "b%d" % i, cls.monday + timedelta(days=1, hours=12)) for i in range(20)]
        blog.append(cls.e("cart_added", "b0", cls.monday + timedelta(days=1, hours=13)))
        cls.post(blog, key=BLOG_KEY)

    @classmethod
    def e(cls, name, who, at):
        props = {"wishlist_added": {"product_id": "P-1"}, "cart_updated": {"product_id": "P-1", "action": "add"}}
        return harness.person_event(cls.tag, name, who, at, props=props.get(name, PROPS.get(name)))

    @classmethod
    def post(cls, events, key=harness.SHOP_KEY):
        for i in range(0, len(events), 200):
            resp = cls.daemon.post_events({"batch": events[i:i + 200]}, key=key)
            assert resp.status == 202 and resp.body["accepted"] == len(events[i:i + 200]), resp

    def fire_then_resolve(self, rule, more, site="shop"):
        resp = api_call(self.daemon, "POST", RULES, key=ADMIN, params={"site": site}, body=rule)
        self.assertEqual(resp.status, 201, "%r" % (resp,))
        path = "%s/%d/evaluate" % (RULES, resp.body["id"])
        judged = []
        for step in ("fire", "resolve"):
            if step == "resolve":
                self.post(more, key=BLOG_KEY if site == "blog" else harness.SHOP_KEY)
            resp = api_call(self.daemon, "POST", path, key=ADMIN, params={"site": site, "notify": "true"})
            self.assertEqual(resp.status, 200, "%r" % (resp,))
            judged.append((resp.body["state"]["to"], resp.body["evaluation"]["value"]))
        return judged

    def test_stall(self):
        rule = {"name": "stall", "owner": "o", "min_volume": 1, "condition": {"kind": "stall", "below_percent": 50},
                "metric": {"type": "count", "event": "wishlist_added", "unit": "people"}}
        more = [self.e("wishlist_added", "wz%d" % i, self.yesterday) for i in range(4)]
        self.assertEqual(self.fire_then_resolve(rule, more), [("firing", 2), ("resolved", 6)])

    def test_anomaly(self):
        rule = {"name": "anomaly", "owner": "o", "min_volume": 1, "condition": {"kind": "anomaly", "trailing": 8},
                "metric": {"type": "count", "event": "cart_updated", "unit": "people"}}
        more = [self.e("cart_updated", "uz%d" % i, self.yesterday) for i in range(8)]
        self.assertEqual(self.fire_then_resolve(rule, more), [("firing", 2), ("resolved", 10)])

    def test_target_pace(self):
        rule = {"name": "pace", "owner": "o", "min_volume": 1, "condition": {"kind": "target_pace", "behind_percent": 10},
                "metric": {"type": "count", "event": "cart_added"}}
        more = [self.e("cart_added", "b1", self.monday + timedelta(days=1, hours=14))]
        self.assertEqual(self.fire_then_resolve(rule, more, site="blog"), [("firing", 0.05), ("resolved", 0.1)])


if __name__ == "__main__":
    harness.main(day_bound=True)
