#!/usr/bin/env python3
"""Alert rules over the API: created, listed, read, replaced and deleted;
checked against the example plan when saved (unknown events, bad periods,
impossible bounds answer 400 with their code); an admin key to change, a
read key to list. The rules' every field is in tests/unit/data/alert_rules.json;
here, what the HTTP side adds."""

import copy

import harness
from admin_api import api_call, key_entry, new_api_key

PLAN = harness.read_example_plan()
READ = new_api_key("rk_alerts")
ADMIN = new_api_key("ak_alerts")
RULE = {"name": "Checkout rate", "owner": "checkout@example.com",
        "metric": {"type": "conversion_rate", "from": "checkout_started", "to": "purchase_completed"},
        "period": "day", "notify": ["https://hooks.example.com/milepost"],
        "condition": {"kind": "threshold", "below": 0.3}}
RULES = "/api/v1/alerts/rules"


class AlertRulesCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "min_volume": 25,
                             "pii_hash_key": "alerts-test-pii-key-0123456789ab",
                             "api_keys": [key_entry("read", "read", READ), key_entry("admin", "admin", ADMIN)]}
        super().setUpClass()

    def call(self, method, path, key=ADMIN, body=None, site="shop"):
        return api_call(self.daemon, method, path, key=key, params={"site": site}, body=body)

    def create(self, rule):
        resp = self.call("POST", RULES, body=rule)
        self.assertEqual(resp.status, 201, "%r" % (resp,))
        return resp.body

    def test_life_of_a_rule(self):
        rule = dict(RULE, name="Life")
        made = self.create(rule)
        self.assertEqual(made["name"], "Life")
        self.assertIsInstance(made["id"], int)
        # Defaults written out; min_volume from the configuration.
        self.assertEqual(made["rule"]["min_volume"], 25)
        self.assertEqual(made["rule"]["severity"], "warning")
        self.assertEqual(made["rule"]["metric"]["window"], "1d")
        self.assertEqual(made["rule"]["notify"], ["https://hooks.example.com/milepost"])
        path = "%s/%d" % (RULES, made["id"])
        self.assertEqual(self.call("GET", path).body, made)
        # A read key sees a webhook's scheme and host, not its secret path.
        hidden = copy.deepcopy(made)
        hidden["rule"]["notify"] = ["https://hooks.example.com/..."]
        got = self.call("GET", path, key=READ)
        self.assertEqual((got.status, got.body), (200, hidden))
        listed = self.call("GET", RULES, key=READ)
        self.assertEqual(listed.status, 200)
        self.assertIn(hidden, listed.body["rules"])
        # Replaced whole: what GET gave, changed, goes back.
        changed = copy.deepcopy(made["rule"])
        changed["condition"] = {"kind": "stall", "below_percent": 40}
        changed["name"] = "Life, renamed"
        put = self.call("PUT", path, body=changed)
        self.assertEqual(put.status, 200, "%r" % (put,))
        self.assertEqual(put.body["rule"]["condition"], {"kind": "stall", "below_percent": 40.0, "trailing": 4})
        self.assertEqual((put.body["id"], put.body["name"], put.body["created_at"]),
                         (made["id"], "Life, renamed", made["created_at"]))
        self.assertEqual(self.call("GET", path).body, put.body)
        deleted = self.call("DELETE", path)
        self.assertEqual((deleted.status, deleted.body), (200, {"site": "shop", "id": made["id"], "deleted": True}))
        self.assertError(self.call("GET", path, key=READ), 404, "not_found")
        self.assertError(self.call("DELETE", path), 404, "not_found")
        self.assertError(self.call("PUT", path, body=RULE), 404, "not_found")

    def test_names_are_unique_per_site(self):
        first = self.create(dict(RULE, name="Unique"))
        self.assertError(self.call("POST", RULES, body=dict(RULE, name="Unique")), 409, "rule_exists")
        other = self.create(dict(RULE, name="Unique 2"))
        self.assertError(self.call("PUT", "%s/%d" % (RULES, other["id"]), body=dict(RULE, name="Unique")),
                         409, "rule_exists")
        # The same name in another site is another rule.
        resp = self.call("POST", RULES, body=dict(RULE, name="Unique"), site="blog")
        self.assertEqual(resp.status, 201, "%r" % (resp,))
        self.assertError(self.call("GET", "%s/%d" % (RULES, resp.body["id"]), key=READ), 404, "not_found")
        self.assertEqual(self.call("GET", "%s/%d" % (RULES, first["id"]), key=READ).status, 200)

    def test_rules_are_checked_when_saved(self):
        cases = [
            (dict(RULE, metric={"type": "count", "event": "cart_exploded"}), "rule_unknown_event"),
            (dict(RULE, period="fortnight"), "invalid_period"),
            (dict(RULE, condition={"kind": "threshold", "below": 1.5}), "impossible_bound"),
            (dict(RULE, condition={"kind": "threshold", "below": 0.5, "above": 0.2}), "impossible_bound"),
            (dict(RULE, colour="red"), "invalid_rule"),
            (dict(RULE, notify=["ftp://example.com/"]), "invalid_rule"),
        ]
        for rule, code in cases:
            with self.subTest(code=code, rule=rule):
                self.assertError(self.call("POST", RULES, body=rule), 400, code)
        made = self.create(dict(RULE, name="Checked"))
        self.assertError(self.call("PUT", "%s/%d" % (RULES, made["id"]), body=dict(RULE, period="year")),
                         400, "invalid_period")
        for body in (b"{", b"[1, 2]", b'{"name": "a", "name": "b"}', b"[" * 20 + b"]" * 20, b""):
            with self.subTest(body=body):
                resp = self.call("POST", RULES, body=body)
                self.assertEqual(resp.status, 400, "%r" % (resp,))
                self.assertIn(harness.error_code(resp), ("malformed_json", "invalid_rule"))

    def test_keys_and_paths(self):
        self.assertError(self.call("POST", RULES, key=READ, body=RULE), 403, "forbidden")
        made = self.create(dict(RULE, name="Keys"))
        path = "%s/%d" % (RULES, made["id"])
        self.assertError(self.call("DELETE", path, key=READ), 403, "forbidden")
        self.assertError(self.call("PUT", path, key=READ, body=RULE), 403, "forbidden")
        self.assertError(self.call("GET", RULES, key=None), 401, "missing_api_key")
        self.assertEqual(self.call("GET", RULES, key=ADMIN).status, 200, "an admin key may read")
        for bad in ("abc", "1x", "9" * 19, "-1"):
            with self.subTest(id=bad):
                self.assertError(self.call("GET", RULES + "/" + bad, key=READ), 404, "not_found")
        self.assertError(self.call("GET", RULES + "/999999", key=READ), 404, "not_found")
        self.assertEqual(self.call("PATCH", path, body=RULE).status, 405)


CONFIGURED = dict(RULE, name="From the configuration", site="shop")


class ConfiguredRulesCase(harness.DaemonTestCase):
    """Rules declared in the configuration's alerts: synchronised at start
    and on reload (created, replaced, deleted when gone), shown with
    source "config", and changed only there."""

    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "pii_hash_key": "alerts-test-pii-key-0123456789ab",
                             "alerts": [CONFIGURED, dict(RULE, name="Blog rule", site="blog")],
                             "api_keys": [key_entry("admin", "admin", ADMIN)]}
        super().setUpClass()

    def rules(self, site="shop"):
        resp = api_call(self.daemon, "GET", RULES, key=ADMIN, params={"site": site})
        self.assertEqual(resp.status, 200)
        return {r["name"]: r for r in resp.body["rules"]}

    def test_configured_rules(self):
        made = self.rules()["From the configuration"]
        self.assertEqual((made["source"], made["rule"]["condition"]), ("config", {"kind": "threshold", "below": 0.3}))
        self.assertIn("Blog rule", self.rules("blog"))
        path = "%s/%d" % (RULES, made["id"])
        resp = api_call(self.daemon, "PUT", path, key=ADMIN, params={"site": "shop"}, body=RULE)
        self.assertError(resp, 409, "rule_from_config")
        self.assertError(api_call(self.daemon, "DELETE", path, key=ADMIN, params={"site": "shop"}),
                         409, "rule_from_config")
        self.assertError(api_call(self.daemon, "POST", RULES, key=ADMIN, params={"site": "shop"},
                                  body=dict(RULE, name="From the configuration")), 409, "rule_exists")
        api = api_call(self.daemon, "POST", RULES, key=ADMIN, params={"site": "shop"},
                       body=dict(RULE, name="From the API")).body
        self.assertEqual(api["source"], "api")
        # Reload: the configured rule changes, the blog's goes, the API's stays.
        changed = dict(CONFIGURED, condition={"kind": "threshold", "below": 0.2})
        self.daemon.rewrite_config(alerts=[changed])
        self.daemon.reload()
        rules = self.rules()
        self.assertEqual(rules["From the configuration"]["rule"]["condition"]["below"], 0.2)
        self.assertEqual(rules["From the configuration"]["id"], made["id"])
        self.assertIn("From the API", rules)
        self.assertNotIn("Blog rule", self.rules("blog"))
        # An invalid rule refuses the whole reload.
        self.daemon.rewrite_config(alerts=[dict(CONFIGURED, period="fortnight")])
        log = self.daemon.reload(expect="refused")
        self.assertIn("alerts[0]: invalid_period", log)
        self.assertEqual(self.rules()["From the configuration"]["rule"]["condition"]["below"], 0.2)

    def test_an_invalid_rule_refuses_the_start(self):
        for alerts, says in (([dict(RULE, site="shop", metric={"type": "count", "event": "nope_nope"})],
                              "alerts[0]: rule_unknown_event"),
                             ([RULE], "must name a configured site (needed with several sites)"),
                             ([dict(RULE, site="shop"), dict(RULE, site="shop")], "alerts[1]")):
            with self.subTest(says=says):
                d = harness.Daemon(self.db, wait=None, **dict(self.daemon_config, alerts=alerts))
                try:
                    self.assertIsNotNone(d.wait(20), "started anyway")
                    self.assertNotEqual(d.exit_code, 0)
                    self.assertIn(says, d.log())
                finally:
                    d.kill()


if __name__ == "__main__":
    harness.main()
