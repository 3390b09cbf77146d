#!/usr/bin/env python3
"""GET /api/v1/plan: the tracking plan in force as a framework map. The
expected map is built here from the example plan file itself (phases in
order, each milestone with its owner and target, the macro conversion, the
secondary actions by name), so that the answer is checked against the
file, not against the daemon's own reading of it. Also: the read scope
(no key, a wrong key, a write key), a plan reload showing at once, and a
daemon without a plan."""

import copy

import harness
from admin_api import api_call, key_entry, new_api_key

PLAN = harness.read_example_plan()
READ = new_api_key("rk_plan")


def expected_event(plan, name):
    d = plan["events"][name]
    return {"name": name, "kind": d["kind"], "description": d.get("description"),
            "owner": d.get("owner"), "target": d.get("target")}


def expected_map(plan):
    return {
        "version": plan["version"],
        "name": plan.get("name"),
        "description": plan.get("description"),
        "macro_conversion": expected_event(plan, plan["macro_conversion"]),
        "phases": [{"name": p["name"], "description": p.get("description"),
                    "milestones": [expected_event(plan, m) for m in p["milestones"]]}
                   for p in plan["phases"]],
        "secondary_actions": [expected_event(plan, n) for n in sorted(plan["events"])
                              if plan["events"][n]["kind"] == "secondary"],
    }


def strip_none(v):
    """Absent and null are the same to a reader of the map."""
    if isinstance(v, dict):
        return {k: strip_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [strip_none(x) for x in v]
    return v


class PlanApiCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.plan_path = harness.write_plan(PLAN)
        cls.daemon_config = {"plan": cls.plan_path,
                             "pii_hash_key": "plan-api-test-pii-key-0123456789",
                             "api_keys": [key_entry("read", "read", READ)]}
        super().setUpClass()

    def get(self, key=READ, **params):
        return api_call(self.daemon, "GET", "/api/v1/plan", key=key,
                        params=dict({"site": "shop"}, **params))

    def test_map_of_the_example_plan(self):
        resp = self.get()
        self.assertEqual(resp.status, 200, resp)
        body = resp.body
        self.assertEqual(body["site"], "shop")
        self.assertRegex(body["as_of"], r"^\d{4}-\d\d-\d\dT")
        got = {k: body[k] for k in expected_map(PLAN)}
        self.assertEqual(strip_none(got), strip_none(expected_map(PLAN)))
        # The example plan has targets and secondary actions to show.
        self.assertTrue(any(m["target"] for p in body["phases"] for m in p["milestones"]))
        self.assertTrue(body["secondary_actions"])

    def test_read_scope(self):
        self.assertError(self.get(key=None), 401, "missing_api_key")
        self.assertError(self.get(key="rk_wrong"), 401, "invalid_api_key")
        self.assertError(self.get(key=harness.SHOP_KEY), 403, "forbidden")
        self.assertError(self.get(site="nowhere"), 404, "not_found")
        post = api_call(self.daemon, "POST", "/api/v1/plan", key=READ)
        self.assertError(post, 405, "method_not_allowed")

    def test_reload_shows_the_new_plan(self):
        plan = copy.deepcopy(PLAN)
        plan["version"] = PLAN["version"] + 1
        plan["events"]["cart_added"]["owner"] = "carts@example.com"
        harness.replace_file(self.plan_path, plan)
        try:
            self.daemon.reload()
            body = self.get().body
            self.assertEqual(body["version"], plan["version"])
            owners = {m["name"]: m["owner"] for p in body["phases"] for m in p["milestones"]}
            self.assertEqual(owners["cart_added"], "carts@example.com")
        finally:
            harness.replace_file(self.plan_path, PLAN)
            self.daemon.reload()


class NoPlanCase(harness.DaemonTestCase):
    daemon_config = {"api_keys": [key_entry("read", "read", READ)]}

    def test_default_plan(self):
        resp = api_call(self.daemon, "GET", "/api/v1/plan", key=READ, params={"site": "shop"})
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual((resp.body["version"], resp.body["macro_conversion"], resp.body["phases"],
                          resp.body["secondary_actions"]), (0, None, [], []))


if __name__ == "__main__":
    harness.main()
