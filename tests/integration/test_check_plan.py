#!/usr/bin/env python3
"""milepost check-plan (the plan linter), milepost hash-key, and serve
refusing to start on a plan with problems."""

import copy
import hashlib
import json
import os
import re
import subprocess

import harness
from harness import run_milepost

EXAMPLE_PLAN = os.path.join(harness.REPO_ROOT, "config", "plan.json")

# Configuration errors must stop the start before any database work.
NO_DB = harness.db_url("milepost_no_such_database")


def documented_minimal_plan():
    """The plan of the section "A minimal plan" of docs/plan.md."""
    with open(os.path.join(harness.REPO_ROOT, "docs", "plan.md")) as f:
        m = re.search(r"## A minimal plan\s+```json\n(.*?)```", f.read(), re.S)
    return json.loads(m.group(1))


GOOD = {
    "version": 5,
    "naming": {"properties": "^[a-z][a-z0-9_]*$"},
    "macro_conversion": "order_placed",
    "consent_categories": ["analytics"],
    "phases": [
        {"name": "browse", "milestones": ["item_viewed"]},
        {"name": "buy", "milestones": ["cart_added", "order_placed"]},
    ],
    "events": {
        "item_viewed": {"kind": "milestone", "consent": "analytics", "version": 2, "accepts_versions": [1, 2],
                        "target": {"baseline": 0.1, "target": 0.2, "period": "week"}},
        "cart_added": {"kind": "milestone", "properties": {
            "qty": {"type": "integer", "required": True, "min": 1, "max": 9},
            "currency": {"type": "string", "enum": ["EUR", "USD"]},
            "price": {"type": "number"}}},
        "order_placed": {"kind": "macro"},
        "wish_added": {"kind": "secondary"},
        "cart_updated": {"kind": "secondary", "deprecated": {"replaced_by": "cart_added", "sunset": "2027-06-30"}},
    },
}


def broken_plan():
    """GOOD with one mistake of each kind; returns (plan, {path: regex of
    the message}). Paths of problems whose place depends on key order are
    checked separately."""
    p = copy.deepcopy(GOOD)
    ev = p["events"]
    expected = {}

    def bad(path, message):
        expected[path] = message

    ev["cart_added"]["properties"]["qty"]["requried"] = True
    bad("$.events.cart_added.properties.qty.requried", "unknown key 'requried'")
    ev["cart_added"]["properties"]["qty"]["min"] = 10
    bad("$.events.cart_added.properties.qty.min", "greater than max")
    ev["cart_added"]["properties"]["qty"]["pattern"] = "^[0-9]+$"
    bad("$.events.cart_added.properties.qty.pattern", "string properties only")
    ev["cart_added"]["properties"]["price"]["type"] = "money"
    bad("$.events.cart_added.properties.price.type", "must be one of string|number|integer")
    ev["cart_added"]["properties"]["currency"]["enum"] = ["EUR", 840]
    bad(r"$.events.cart_added.properties.currency.enum[1]", "not a string")
    ev["cart_updated"]["deprecated"] = {"replaced_by": "cart_add", "sunset": "30/06/2027"}
    bad("$.events.cart_updated.deprecated.replaced_by", "names no other event of the plan: 'cart_add'")
    bad("$.events.cart_updated.deprecated.sunset", "must be a date")
    ev["item_viewed"]["accepts_versions"] = [1]
    bad("$.events.item_viewed.accepts_versions", "current version 2")
    ev["item_viewed"]["consent"] = "marketing"
    bad("$.events.item_viewed.consent", "not in \\$.consent_categories")
    ev["item_viewed"]["target"] = {"baseline": 1.5, "target": 0.2, "period": "fortnight"}
    bad("$.events.item_viewed.target.baseline", "between 0 and 1")
    bad("$.events.item_viewed.target.period", "must be one of day|week|month")
    ev["item_viewed"]["phase"] = "buy"
    bad("$.events.item_viewed.phase", "does not list this event")
    ev["wish_added"]["phase"] = "browse"
    bad("$.events.wish_added.phase", "secondary actions belong to no phase")
    ev["lonely_step"] = {"kind": "milestone"}
    bad("$.events.lonely_step", "milestone 'lonely_step' is in no phase")
    ev["Bad_Name"] = {"kind": "secondary"}
    bad("$.events.Bad_Name", "breaks the naming rule")
    ev["wish_added"]["properties"] = {"Colour": {"type": "string"}}
    bad("$.events.wish_added.properties.Colour", "breaks the naming rule \\$.naming.properties")
    p["phases"][0]["milestones"].append("wish_added")
    bad("$.phases[0].milestones[1]", "'wish_added' is a secondary event")
    p["phases"][1]["milestones"].append("checkout_done")
    bad("$.phases[1].milestones[2]", "names an unknown event 'checkout_done'")
    p["phases"].append({"name": "browse", "milestones": []})
    bad("$.phases[2].name", "named twice")
    p["unknown_events"] = "ignore"
    bad("$.unknown_events", "must be one of reject|quarantine|accept")
    p["owner"] = "me"
    bad("$.owner", "unknown key 'owner'")
    return p, expected


def check_plan(path, *more):
    return run_milepost(["check-plan", path] + list(more), timeout=30)


def problem_lines(stdout):
    """{path: message} of the 'PATH: message' lines (the summary excluded)."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\$\S*): (.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


class CheckPlanTest(harness.TestCase):

    def test_example_plan_ok(self):
        p = check_plan(EXAMPLE_PLAN)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        plan = harness.read_example_plan()
        self.assertEqual(p.stdout.strip(), "plan OK: %d events in %d phases, version %d"
                         % (len(plan["events"]), len(plan["phases"]), plan["version"]))

    def test_documented_minimal_plan_ok(self):
        plan = documented_minimal_plan()
        p = check_plan(harness.write_plan(plan))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout.strip(), "plan OK: %d events in %d phases, version %d"
                         % (len(plan["events"]), len(plan["phases"]), plan["version"]))

    def test_good_plan_ok(self):
        p = check_plan(harness.write_plan(GOOD))
        self.assertEqual((p.returncode, p.stdout.strip()), (0, "plan OK: 5 events in 2 phases, version 5"),
                         p.stdout + p.stderr)

    def test_every_problem_reported(self):
        plan, expected = broken_plan()
        path = harness.write_plan(plan)
        p = check_plan(path)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        got = problem_lines(p.stdout)
        for where, message in expected.items():
            with self.subTest(path=where):
                self.assertIn(where, got, "no problem reported at %s; output:\n%s" % (where, p.stdout))
                self.assertTrue(any(re.search(message, m) for m in got[where]),
                                "%s: %r does not say %r" % (where, got[where], message))
        n = sum(len(v) for v in got.values())
        self.assertEqual(p.stdout.strip().splitlines()[-1], "%s: %d problem(s)" % (path, n), "the summary line")

    def test_macro_problems(self):
        """Two macros: the second one is reported. macro_conversion naming a
        milestone is reported at $.macro_conversion."""
        plan = copy.deepcopy(GOOD)
        plan["events"]["wish_added"]["kind"] = "macro"
        p = check_plan(harness.write_plan(plan))
        self.assertEqual(p.returncode, 1, p.stdout)
        got = problem_lines(p.stdout)
        seconds = [w for w in ("$.events.order_placed", "$.events.wish_added")
                   if any("a second macro conversion" in m for m in got.get(w, []))]
        self.assertEqual(len(seconds), 1, p.stdout)

        plan = copy.deepcopy(GOOD)
        plan["macro_conversion"] = "cart_added"
        p = check_plan(harness.write_plan(plan))
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("$.macro_conversion", problem_lines(p.stdout), p.stdout)

        plan = copy.deepcopy(GOOD)
        plan["events"]["order_placed"]["kind"] = "milestone"
        p = check_plan(harness.write_plan(plan))
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("no event has kind macro", p.stdout)

    def test_missing_required_keys(self):
        p = check_plan(harness.write_plan({"events": {}}))
        self.assertEqual(p.returncode, 1, p.stdout)
        got = problem_lines(p.stdout)
        for where in ("$.version", "$.macro_conversion", "$.phases", "$.events"):
            self.assertIn(where, got, p.stdout)

    def test_invalid_regular_expression(self):
        plan = copy.deepcopy(GOOD)
        plan["naming"]["events"] = "^[a-z"
        plan["events"]["cart_added"]["properties"]["currency"]["pattern"] = "(EUR"
        p = check_plan(harness.write_plan(plan))
        self.assertEqual(p.returncode, 1, p.stdout)
        got = problem_lines(p.stdout)
        self.assertIn("$.naming.events", got, p.stdout)
        self.assertIn("$.events.cart_added.properties.currency.pattern", got, p.stdout)
        self.assertIn("invalid regular expression", got["$.naming.events"][0])

    def test_invalid_json(self):
        p = check_plan(harness.write_plan('{"version": 1,\n "events": {'))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("$", problem_lines(p.stdout), p.stdout)
        self.assertIn("line 2", p.stdout)

    def test_not_an_object(self):
        p = check_plan(harness.write_plan("[1, 2]"))
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn("$", problem_lines(p.stdout))

    def test_unreadable_file(self):
        """docs/plan.md: exit status 2 on a usage error or an unreadable file."""
        p = check_plan(os.path.join(harness.tmpdir(), "no-such-plan.json"))
        self.assertIn("no-such-plan.json", p.stdout + p.stderr)
        self.assertEqual(p.returncode, 2, "exit status for a missing file: %s%s" % (p.stdout, p.stderr))

    def test_usage(self):
        p = run_milepost(["check-plan"], timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("check-plan FILE", p.stderr)
        p = run_milepost(["check-plan", "--help"], timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("check-plan", p.stdout)
        p = run_milepost(["check-plan", EXAMPLE_PLAN, "extra.json"], timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)


class ServeRefusesBadPlanTest(harness.TestCase):

    def refused(self, **config):
        d = harness.Daemon(NO_DB, wait=None, **config)
        try:
            code = d.wait(20)
            self.assertIsNotNone(code, "milepost started anyway; log:\n%s" % d.log_tail())
            self.assertNotEqual(code, 0)
            return d.log()
        finally:
            d.kill()

    def test_plan_with_problems(self):
        plan, expected = broken_plan()
        path = harness.write_plan(plan)
        log = self.refused(plan=path)
        self.assertIn("check-plan", log, "the log points at the linter")
        for where in expected:
            self.assertIn(where, log, "the log names the problem at %s" % where)

    def test_missing_plan_file(self):
        path = os.path.join(harness.tmpdir(), "absent-plan.json")
        self.assertIn("absent-plan.json", self.refused(plan=path))

    def test_good_plan_starts(self):
        db = harness.fresh_database()
        d = self.start_daemon(db, plan=harness.write_plan(GOOD))
        self.assertIn("plan version 5 (5 events)", d.log())
        self.assertEqual(d.stop(), 0)


class HashKeyTest(harness.TestCase):

    def hash_key(self, stdin):
        return subprocess.run([harness.MILEPOST_BIN, "hash-key"], input=stdin, capture_output=True,
                              text=True, env=harness.milepost_env(), timeout=30)

    def test_prints_sha256(self):
        key = "mp_admin_" + os.urandom(12).hex()
        for stdin in (key, key + "\n", key + "\r\n", key + "\nsecond line\n"):
            with self.subTest(stdin=stdin):
                p = self.hash_key(stdin)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout, hashlib.sha256(key.encode()).hexdigest() + "\n")
                self.assertNotIn(key, p.stdout + p.stderr)

    def test_short_or_missing_key(self):
        for stdin in ("", "short-key\n"):
            with self.subTest(stdin=stdin):
                p = self.hash_key(stdin)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertEqual(p.stdout, "")
                self.assertTrue(p.stderr.strip())


if __name__ == "__main__":
    harness.main()
