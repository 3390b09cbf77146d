#!/usr/bin/env python3
"""The evaluator judges rules by itself, every alert_evaluation_interval_s
(1 s here): a rule that fires on its last complete period is found firing
without anyone asking, with one transition stored; a rule changed is
judged again within its period; with a second daemon on the same database
sweeping too, still one transition per rule.

Fixture: cart_viewed by 2 people yesterday (UTC); rules "people below 5"
fire on it."""

import time
from datetime import timedelta

import harness
from admin_api import api_call, key_entry, new_api_key
from harness import utcnow
from test_metrics import parse as parse_metrics

PLAN = harness.read_example_plan()
ADMIN = new_api_key("ak_evaluator")
RULES = "/api/v1/alerts/rules"


def rule(name):
    return {"name": name, "owner": "test@example.com", "min_volume": 1,
            "metric": {"type": "count", "event": "cart_viewed", "unit": "people"},
            "condition": {"kind": "threshold", "below": 5}}


class EvaluatorCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "pii_hash_key": "evaluator-pii-key-0123456789abcd",
                             "alert_evaluation_interval_s": 1,
                             "api_keys": [key_entry("admin", "admin", ADMIN)]}
        super().setUpClass()
        noon = utcnow().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
        run = harness.new_id()[:8]
        events = [harness.person_event(run, "cart_viewed", "p%d" % i, noon, props={}) for i in range(2)]
        resp = cls.daemon.post_events({"batch": events})
        assert resp.status == 202 and resp.body["accepted"] == 2, resp

    def create(self, name):
        resp = api_call(self.daemon, "POST", RULES, key=ADMIN, params={"site": "shop"}, body=rule(name))
        self.assertEqual(resp.status, 201, "%r" % (resp,))
        return resp.body["id"]

    def state_of(self, rid, daemon=None):
        body = api_call(daemon or self.daemon, "GET", "/api/v1/alerts", key=ADMIN, params={"site": "shop"}).body
        return [a for a in body["alerts"] if a["id"] == rid][0]

    def transitions(self, rid):
        return api_call(self.daemon, "GET", "/api/v1/alerts/events", key=ADMIN,
                        params={"site": "shop", "rule": rid}).body["events"]

    def wait_firing(self, rid, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state_of(rid)["state"] == "firing":
                return
            time.sleep(0.2)
        self.fail("rule %d not firing after %ds: %r" % (rid, timeout, self.state_of(rid)))

    def test_a_rule_is_judged_without_asking(self):
        rid = self.create("by itself")
        self.wait_firing(rid)
        state = self.state_of(rid)
        self.assertEqual((state["value"], state["bound"]), (2, 5))
        time.sleep(2.5)  # more sweeps: the period is judged, nothing new
        self.assertEqual([(t["from"], t["to"]) for t in self.transitions(rid)], [("ok", "firing")])
        self.assertEqual(self.state_of(rid)["judged_at"], state["judged_at"], "judged once per period")
        metrics = parse_metrics(harness.http_request("GET", self.daemon.url("/metrics")).raw.decode())
        self.assertGreaterEqual(metrics[("milepost_alert_sweeps_total", "")], 2)
        self.assertGreaterEqual(metrics[("milepost_alert_transitions_total", "")], 1)

    def test_a_changed_rule_is_judged_again(self):
        rid = self.create("changed")
        self.wait_firing(rid)
        changed = dict(rule("changed"), condition={"kind": "threshold", "below": 1})
        resp = api_call(self.daemon, "PUT", "%s/%d" % (RULES, rid), key=ADMIN, params={"site": "shop"}, body=changed)
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        deadline = time.monotonic() + 15
        while self.state_of(rid)["state"] == "firing" and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.state_of(rid)["state"], "resolved", "judged again in the same period")

    def test_two_daemons_judge_a_rule_once(self):
        other = harness.Daemon(self.db, **self.daemon_config)
        try:
            rids = [self.create("shared %d" % i) for i in range(5)]
            for rid in rids:
                self.wait_firing(rid)
            time.sleep(2.5)
            for rid in rids:
                self.assertEqual([(t["from"], t["to"]) for t in self.transitions(rid)], [("ok", "firing")])
            self.assertEqual(self.state_of(rids[0], daemon=other)["state"], "firing")
        finally:
            other.stop()


if __name__ == "__main__":
    harness.main(day_bound=True)
