#!/usr/bin/env python3
"""The tracking plan at ingest: every validation code over HTTP with its
path, the answer's results and warnings, the verdict columns of stored
events (plan_version, kind, phase) and of rejected_events (event_name,
error_codes, quarantined), the unknown_events modes, the default plan, and
the example plan with a realistic funnel."""

import os
from datetime import timedelta

import harness
from harness import BLOG_KEY, make_event, utcnow

TODAY = utcnow().date()

PLAN_VERSION = 7


def compact_plan(unknown_events="reject"):
    """A compact plan touching every kind of rule."""
    return {
        "version": PLAN_VERSION,
        "name": "integration test plan",
        "naming": {"properties": "^[a-z][a-z0-9_]*$"},
        "macro_conversion": "order_placed",
        "unknown_events": unknown_events,
        "phases": [
            {"name": "browse", "milestones": ["item_viewed"]},
            {"name": "buy", "description": "Cart and order.", "milestones": ["cart_added", "order_placed"]},
        ],
        "events": {
            "page_viewed": {"kind": "page", "properties": {"title": {"type": "string"}}},
            "item_viewed": {
                "kind": "milestone", "version": 2, "accepts_versions": [1, 2],
                "properties": {
                    "item_id": {"type": "string", "required": True, "max_length": 8},
                    "rank": {"type": "integer", "min": 1, "max": 10},
                },
            },
            "cart_added": {
                "kind": "milestone", "phase": "buy",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
                    "qty": {"type": "integer", "required": True, "min": 1, "max": 99},
                    "currency": {"type": "string", "enum": ["EUR", "USD"]},
                    "price": {"type": "number", "min": 0.5},
                    "gift": {"type": "boolean"},
                    "at": {"type": "datetime"},
                    "tags": {"type": "array", "max_length": 3},
                    "meta": {"type": "object"},
                    "size": {"type": "integer", "enum": [1, 2, 3]},
                },
            },
            "order_placed": {
                "kind": "macro", "additional_properties": "reject",
                "properties": {
                    "order_id": {"type": "string", "required": True},
                    "total": {"type": "number", "required": True, "min": 0},
                },
            },
            "wishlist_added": {"kind": "secondary"},
            "old_widget_clicked": {"kind": "secondary",
                                   "deprecated": {"sunset": "2001-01-01", "replaced_by": "wishlist_added"}},
            "today_widget_clicked": {"kind": "secondary", "deprecated": {"sunset": TODAY.isoformat()}},
            "legacy_widget_clicked": {
                "kind": "secondary",
                "deprecated": {"sunset": (TODAY + timedelta(days=1)).isoformat(),
                               "replaced_by": "wishlist_added", "note": "use wishlist_added"},
            },
        },
    }


def planned_kind_phase(plan, name):
    """(kind, phase) the plan gives an event name; (None, None) if unknown."""
    d = plan["events"].get(name)
    if d is None:
        return None, None
    phase = d.get("phase")
    if phase is None:
        phase = next((p["name"] for p in plan["phases"] if name in p["milestones"]), None)
    return d["kind"], phase


class Exp:
    """What one event of a batch should come to: its result, its errors and
    its warnings, each a list of (code, path)."""

    def __init__(self, result, errors=(), warnings=(), native=False):
        self.result = result
        self.errors = sorted(errors)
        self.warnings = sorted(warnings)
        # Refused by the native field checks, before the plan: the daemon
        # does not fill rejected_events.event_name then (see the report).
        self.native = native


STORED = Exp("stored")


def rejected(*errors):
    return Exp("rejected", errors)


def ev(name, props=None, **fields):
    return make_event(name=name, props=props, **fields)


class PlanCase(harness.TestCase):
    """check_batch() for a daemon running self.plan_doc."""

    plan_doc = None

    def check_batch(self, daemon, db, items, key=harness.SHOP_KEY, site_id="shop"):
        """Post [(event, Exp)] as one batch; check the answer, events and
        rejected_events. Returns the response."""
        batch = [e for e, _ in items]
        resp = daemon.post_events({"batch": batch}, key=key)
        n_stored = sum(1 for _, x in items if x.result in ("stored", "anonymised"))
        bad = [i for i, (_, x) in enumerate(items) if x.result == "rejected"]
        self.assertAccepted(resp, n_stored, bad)
        body = resp.body
        self.assertEqual(body.get("results"), [x.result for _, x in items], "results of %r" % (body,))
        errors = {i: sorted(p) for i, p in harness.answer_problems(resp).items()}
        self.assertEqual(errors, {i: x.errors for i, (_, x) in enumerate(items) if x.result == "rejected"},
                         "errors in the answer")
        for entry in body["rejected"]:
            for e in entry["errors"]:
                self.assertTrue(isinstance(e.get("message"), str) and e["message"].strip(), "message of %r" % e)
        warnings = {i: sorted(p) for i, p in harness.answer_problems(resp, "warnings").items()}
        self.assertEqual(warnings, {i: x.warnings for i, (_, x) in enumerate(items) if x.warnings},
                         "warnings in the answer")
        for w in body["warnings"]:
            self.assertEqual(set(w), {"index", "code", "path", "message"}, "warning shape %r" % w)

        # events: the stored ones with the plan's verdict; no other one.
        ids = [e["event_id"] for e in batch]
        rows = harness.event_rows(db, ids, site_id)
        stored_ids = {e["event_id"] for e, x in items if x.result in ("stored", "anonymised")}
        self.assertEqual(set(rows), stored_ids, "stored event ids")
        version = self.plan_doc["version"] if self.plan_doc else None
        for e, x in items:
            row = rows.get(e["event_id"])
            if row is None:
                continue
            kind, phase = planned_kind_phase(self.plan_doc, e["name"]) if self.plan_doc else (None, None)
            self.assertEqual((row["name"], row["plan_version"], row["kind"], row["phase"], row["consented"]),
                             (e["name"], version, kind, phase, True), "verdict columns of %s" % e["name"])
            self.assertEqual(row["props"], e.get("props") or {}, "props of %s" % e["name"])

        # rejected_events: one row per rejected or quarantined event.
        kept = {i: x for i, (_, x) in enumerate(items) if x.result in ("rejected", "quarantined")}
        rrows = harness.rejected_rows(db, resp.headers["x-request-id"])
        self.assertEqual([r["event_index"] for r in rrows], sorted(kept), "rejected_events rows")
        for r in rrows:
            i, x = r["event_index"], kept[r["event_index"]]
            self.assertEqual(r["site_id"], site_id)
            self.assertEqual(r["payload"], batch[i], "payload of event %d" % i)
            if x.native:
                self.assertIn(r["event_name"], (None, batch[i]["name"]), "event_name of event %d" % i)
            else:
                self.assertEqual(r["event_name"], batch[i]["name"], "event_name of event %d" % i)
            self.assertEqual(r["quarantined"], x.result == "quarantined", "quarantined of event %d" % i)
            codes = []
            for code, _ in (x.errors or [("unknown_event", "$.name")]):
                if code not in codes:
                    codes.append(code)
            self.assertEqual(sorted(r["error_codes"]), sorted(codes), "error_codes of event %d" % i)
            self.assertEqual(len(r["error_codes"]), len(set(r["error_codes"])), "distinct codes")
            self.assertEqual(sorted((e["code"], e["path"]) for e in r["errors"]),
                             x.errors or [("unknown_event", "$.name")], "errors column of event %d" % i)
        return resp


class PlanValidationTest(PlanCase, harness.DaemonTestCase):
    """One daemon with the compact plan, unknown_events reject."""

    plan_doc = compact_plan()

    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(cls.plan_doc)}
        super().setUpClass()

    def check(self, items, **kw):
        return self.check_batch(self.daemon, self.db, items, **kw)

    def test_planned_events_stored_with_verdict(self):
        self.check([
            (ev("page_viewed", {"title": "Home"}), STORED),
            (ev("page_viewed"), STORED),
            (ev("item_viewed", {"item_id": "I-1", "rank": 1}), STORED),
            (ev("cart_added", {"sku": "ABC-12", "qty": 1, "currency": "EUR", "price": 0.5, "gift": False,
                               "at": "2026-11-23T08:45:00+01:00", "tags": ["a", "b", "c"],
                               "meta": {"any": ["thing", 1]}, "size": 3}), STORED),
            (ev("order_placed", {"order_id": "O-1", "total": 0}), STORED),
            (ev("wishlist_added", {"whatever": [1, {"x": None}]}), STORED),
        ])

    def test_boundaries_and_lenient_values(self):
        self.check([
            (ev("cart_added", {"qty": 99}), STORED),                   # max is inclusive
            (ev("cart_added", {"qty": 3.0}), STORED),                  # a real without fraction is an integer
            (ev("cart_added", {"qty": 2, "size": 2.0}), STORED),       # enum compares numbers by value
            (ev("item_viewed", {"item_id": "12345678"}), STORED),      # max_length 8 bytes
            (ev("item_viewed", {"item_id": "\u00e9\u00e9\u00e9\u00e9"}), STORED),  # 4 chars, 8 bytes
            (ev("item_viewed", {"item_id": "I-2", "rank": None}), STORED),  # null counts as absent
            (ev("cart_added", {"qty": 5, "price": 1e6, "extra_field": "allowed"}), STORED),
        ])

    def test_name_format(self):
        """A name breaking naming.events is rejected with name_format alone,
        whatever else is wrong; a property name breaking naming.properties
        is name_format at its path."""
        nf = ("name_format", "$.name")
        self.check([
            (ev("Signup"), rejected(nf)),
            (ev("signup"), rejected(nf)),                  # one word: the default rule wants two
            (ev("order-placed"), rejected(nf)),
            (ev("Cart_Added", {"qty": "many", "Bad": 1}), rejected(nf)),
            (ev("cart_added_"), rejected(nf)),
            (ev("cart_added", {"qty": 1, "Gift": True}), rejected(("name_format", "$.props.Gift"))),
            (ev("cart_added", {"qty": 1, "gift-wrap": True, "9lives": 1}),
             rejected(("name_format", "$.props.gift-wrap"), ("name_format", "$.props.9lives"))),
            (ev("cart_added", {"qty": 1}), STORED),
        ])

    def test_unknown_event_rejected(self):
        """unknown_events reject: unknown_event at $.name, alone."""
        self.check([
            (ev("thing_happened"), rejected(("unknown_event", "$.name"))),
            (ev("thing_happened", {"BadName": 1}), rejected(("unknown_event", "$.name"))),
            (ev("wishlist_added"), STORED),
        ])

    def test_missing_property(self):
        self.check([
            (ev("item_viewed"), rejected(("missing_property", "$.props.item_id"))),
            (ev("item_viewed", {"item_id": None}), rejected(("missing_property", "$.props.item_id"))),
            (ev("item_viewed", {"rank": 2}), rejected(("missing_property", "$.props.item_id"))),
            (ev("order_placed", {}), rejected(("missing_property", "$.props.order_id"),
                                              ("missing_property", "$.props.total"))),
            (ev("item_viewed", {"item_id": "ok"}), STORED),
        ])

    def test_wrong_type(self):
        wt = lambda p: ("wrong_type", "$.props." + p)  # noqa: E731
        self.check([
            (ev("cart_added", {"qty": "2"}), rejected(wt("qty"))),
            (ev("cart_added", {"qty": 1.5}), rejected(wt("qty"))),
            (ev("cart_added", {"qty": True}), rejected(wt("qty"))),
            (ev("cart_added", {"qty": 1, "sku": 5, "price": "1.00", "gift": "true", "at": "tomorrow",
                               "tags": {"a": 1}, "meta": ["x"], "currency": ["EUR"]}),
             rejected(wt("sku"), wt("price"), wt("gift"), wt("at"), wt("tags"), wt("meta"), wt("currency"))),
            (ev("cart_added", {"qty": 1, "at": "2026-02-30T10:00:00Z"}), rejected(wt("at"))),
            (ev("order_placed", {"order_id": 17, "total": 10}), rejected(wt("order_id"))),
        ])

    def test_not_in_enum(self):
        self.check([
            (ev("cart_added", {"qty": 1, "currency": "eur"}), rejected(("not_in_enum", "$.props.currency"))),
            (ev("cart_added", {"qty": 1, "currency": "GBP"}), rejected(("not_in_enum", "$.props.currency"))),
            (ev("cart_added", {"qty": 1, "size": 4}), rejected(("not_in_enum", "$.props.size"))),
            (ev("cart_added", {"qty": 1, "currency": "USD", "size": 1}), STORED),
        ])

    def test_pattern_mismatch(self):
        pm = ("pattern_mismatch", "$.props.sku")
        self.check([
            (ev("cart_added", {"qty": 1, "sku": "abc-1"}), rejected(pm)),
            (ev("cart_added", {"qty": 1, "sku": "ABC-"}), rejected(pm)),
            (ev("cart_added", {"qty": 1, "sku": "XABC-1"}), rejected(pm)),   # anchored
            (ev("cart_added", {"qty": 1, "sku": "ABC-1 "}), rejected(pm)),
            (ev("cart_added", {"qty": 1, "sku": "XYZ-0042"}), STORED),
        ])

    def test_out_of_range(self):
        self.check([
            (ev("cart_added", {"qty": 0}), rejected(("out_of_range", "$.props.qty"))),
            (ev("cart_added", {"qty": 100}), rejected(("out_of_range", "$.props.qty"))),
            (ev("cart_added", {"qty": -5}), rejected(("out_of_range", "$.props.qty"))),
            (ev("cart_added", {"qty": 1, "price": 0.49}), rejected(("out_of_range", "$.props.price"))),
            (ev("item_viewed", {"item_id": "a", "rank": 11}), rejected(("out_of_range", "$.props.rank"))),
            (ev("order_placed", {"order_id": "O", "total": -0.01}), rejected(("out_of_range", "$.props.total"))),
            (ev("item_viewed", {"item_id": "a", "rank": 10}), STORED),
        ])

    def test_too_long(self):
        self.check([
            (ev("item_viewed", {"item_id": "123456789"}), rejected(("too_long", "$.props.item_id"))),
            # 5 characters, 9 bytes: max_length counts UTF-8 bytes.
            (ev("item_viewed", {"item_id": "\u00e9\u00e9\u00e9\u00e9a"}), rejected(("too_long", "$.props.item_id"))),
            (ev("cart_added", {"qty": 1, "tags": [1, 2, 3, 4]}), rejected(("too_long", "$.props.tags"))),
            (ev("cart_added", {"qty": 1, "tags": []}), STORED),
        ])

    def test_unexpected_property(self):
        self.check([
            (ev("order_placed", {"order_id": "O-2", "total": 5, "coupon": "X"}),
             rejected(("unexpected_property", "$.props.coupon"))),
            (ev("order_placed", {"order_id": "O-3", "total": 5, "a": 1, "b": None}),
             rejected(("unexpected_property", "$.props.a"), ("unexpected_property", "$.props.b"))),
            # additional_properties defaults to allow.
            (ev("item_viewed", {"item_id": "x", "coupon": "X"}), STORED),
        ])

    def test_all_errors_of_an_event(self):
        """Every problem of an event is reported, each at its path, and the
        row's error_codes hold each code once."""
        self.check([
            (ev("cart_added", {"qty": 0, "currency": "eur", "sku": "x", "price": -1, "gift": 1,
                               "tags": [1, 2, 3, 4, 5], "Extra": 1}),
             rejected(("out_of_range", "$.props.qty"), ("not_in_enum", "$.props.currency"),
                      ("pattern_mismatch", "$.props.sku"), ("out_of_range", "$.props.price"),
                      ("wrong_type", "$.props.gift"), ("too_long", "$.props.tags"),
                      ("name_format", "$.props.Extra"))),
            (ev("item_viewed", {"rank": 0}, version=9),
             rejected(("unsupported_version", "$.version"), ("missing_property", "$.props.item_id"),
                      ("out_of_range", "$.props.rank"))),
        ])

    def test_versions(self):
        uv = ("unsupported_version", "$.version")
        self.check([
            (ev("item_viewed", {"item_id": "v1"}, version=1), STORED),
            (ev("item_viewed", {"item_id": "v2"}, version=2), STORED),
            (ev("item_viewed", {"item_id": "v-"}), STORED),            # no version: the current one
            (ev("item_viewed", {"item_id": "v3"}, version=3), rejected(uv)),
            (ev("wishlist_added", version=1), STORED),                 # default version 1
            (ev("wishlist_added", version=2), rejected(uv)),
            (ev("item_viewed", {"item_id": "vs"}, version="2"), Exp("rejected", [("wrong_type", "$.version")], native=True)),
            (ev("item_viewed", {"item_id": "v0"}, version=0), Exp("rejected", [("wrong_type", "$.version")], native=True)),
            (ev("item_viewed", {"item_id": "vf"}, version=1.5), Exp("rejected", [("wrong_type", "$.version")], native=True)),
        ])

    def test_deprecation_and_sunset(self):
        self.check([
            (ev("legacy_widget_clicked"), Exp("stored", warnings=[("event_deprecated", "$.name")])),
            (ev("today_widget_clicked"), rejected(("event_sunset", "$.name"))),  # the sunset day itself
            (ev("old_widget_clicked"), rejected(("event_sunset", "$.name"))),
            (ev("wishlist_added"), STORED),
        ])
        # A deprecated event with a broken property: rejected, and still warned.
        resp = self.check([
            (ev("legacy_widget_clicked", version=4),
             Exp("rejected", [("unsupported_version", "$.version")], [("event_deprecated", "$.name")])),
        ])
        self.assertIn("wishlist_added", resp.body["warnings"][0]["message"], "the warning names the replacement")

    def test_retried_batch_keeps_the_verdict(self):
        """A batch holding an already stored id takes the dedup path: the new
        events of it still get their plan_version, kind and phase."""
        first = ev("item_viewed", {"item_id": "r-1"})
        self.check([(first, STORED)])
        self.check([(first, STORED), (ev("cart_added", {"qty": 2}), STORED),
                    (ev("order_placed", {"order_id": "O-9", "total": 1}), STORED),
                    (ev("cart_added", {"qty": 0}), rejected(("out_of_range", "$.props.qty")))])
        self.assertEqual(harness.event_id_counts(self.db, [first["event_id"]]), {first["event_id"]: 1})

    def test_rejected_for_the_right_site(self):
        self.check([(ev("cart_added", {"qty": 0}), rejected(("out_of_range", "$.props.qty"))),
                    (ev("cart_added", {"qty": 1}), STORED)], key=BLOG_KEY, site_id="blog")

    def test_single_event_answer(self):
        """A body that is one event gets the same answer shape."""
        e = ev("cart_added", {"qty": 0})
        resp = self.post(e)
        self.assertAccepted(resp, 0, [0])
        self.assertEqual(resp.body["results"], ["rejected"])
        self.assertEqual(resp.body["warnings"], [])
        self.assertEqual(harness.answer_problems(resp), {0: [("out_of_range", "$.props.qty")]})
        fixed = dict(e, props={"qty": 1})
        resp = self.post(fixed)
        self.assertAccepted(resp, 1)
        self.assertEqual(resp.body["results"], ["stored"])
        self.assertEqual(harness.event_id_counts(self.db, [e["event_id"]]), {e["event_id"]: 1},
                         "a rejected event's id is not used up")


class UnknownEventsModesTest(PlanCase):
    """unknown_events: reject, quarantine, accept."""

    def start(self, mode):
        self.plan_doc = compact_plan(mode)
        db = harness.fresh_database()
        return db, self.start_daemon(db, plan=harness.write_plan(self.plan_doc))

    def test_quarantine(self):
        db, d = self.start("quarantine")
        cookieless = ev("thing_happened", {"a": 1}, anonymous_id=None)
        resp = self.check_batch(d, db, [
            (ev("thing_happened"), Exp("quarantined")),
            (ev("cart_added", {"qty": 1}), STORED),
            (cookieless, Exp("quarantined")),
            (ev("cart_added", {"qty": 0}), rejected(("out_of_range", "$.props.qty"))),
            (ev("Thing"), rejected(("name_format", "$.name"))),   # naming first, whatever the mode
        ])
        # The client is told nothing failed for a quarantined event.
        self.assertEqual(sorted(r["index"] for r in resp.body["rejected"]), [3, 4])
        self.assertEqual(resp.body["warnings"], [])
        # The cookieless id derived at ingest is kept for the replay.
        row = harness.rejected_rows(db, resp.headers["x-request-id"])[1]
        self.assertEqual(row["event_index"], 2)
        self.assertRegex(row["derived_anonymous_id"] or "", r"^v_[0-9a-f]{32}$")
        self.assertNotIn("anonymous_id", row["payload"])
        self.assertEqual(d.stop(), 0)

    def test_accept(self):
        db, d = self.start("accept")
        uw = ("unknown_event", "$.name")
        self.check_batch(d, db, [
            (ev("thing_happened", {"anything": [1, 2]}), Exp("stored", warnings=[uw])),
            (ev("cart_added", {"qty": 1}), STORED),
            # Property names are still checked against naming.properties.
            (ev("thing_happened", {"Bad": 1}), Exp("rejected", [("name_format", "$.props.Bad")], [uw])),
            (ev("Thing"), rejected(("name_format", "$.name"))),
        ])
        self.assertEqual(d.stop(), 0)

    def test_reject(self):
        db, d = self.start("reject")
        self.check_batch(d, db, [
            (ev("thing_happened"), rejected(("unknown_event", "$.name"))),
            (ev("wishlist_added"), STORED),
        ])
        self.assertEqual(d.stop(), 0)


class DefaultPlanTest(PlanCase, harness.DaemonTestCase):
    """Without a plan: the default naming rule, unknown events accepted with
    a warning, no plan version, kind or phase."""

    plan_doc = None

    def test_default_plan(self):
        # Without a plan file no event is planned, and no warning says so.
        self.check_batch(self.daemon, self.db, [
            (ev("sign_up"), Exp("stored", warnings=[])),
            (ev("signup"), rejected(("name_format", "$.name"))),
            (ev("Sign_up"), rejected(("name_format", "$.name"))),
            (ev("step2_done", {"AnyName": 1, "x-y": 2}), Exp("stored", warnings=[])),  # no property rule
            (ev("cart_added", {"qty": "many"}, version=5), Exp("stored", warnings=[])),
        ])


# --------------------------------------------------------------------------
# The example plan, config/plan.json

EXAMPLE_KEY = "example-pii-key-0123456789abcdef"


class ExamplePlanTest(PlanCase, harness.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        cls.plan_path = os.path.join(harness.REPO_ROOT, "config", "plan.json")
        cls.plan_doc = harness.read_example_plan()
        cls.daemon_config = {"plan": cls.plan_path, "pii_hash_key": EXAMPLE_KEY}
        super().setUpClass()

    def test_funnel(self):
        """A visitor's way to a purchase, one batch, every event stored with
        the example plan's kind, phase and version."""
        a = {"anonymous_id": "anon-funnel-" + harness.new_id()[:8], "session_id": "s-1",
             "consent": {"analytics": True, "marketing": False}}
        start = utcnow() - timedelta(minutes=10)
        ts = lambda m: harness.rfc3339(start + timedelta(minutes=m))  # noqa: E731
        batch = [
            make_event(name="page_viewed", ts=ts(0), url="https://shop.example/", **a,
                       props={"page_type": "home", "title": "Example shop", "experiments": {"hero": "b"}}),
            make_event(name="product_viewed", ts=ts(1), version=2, url="https://shop.example/p/P-1001", **a,
                       props={"product_id": "P-1001", "sku": "P-1001-M", "name": "Rain jacket",
                              "category": "outerwear", "price": 89.9, "currency": "EUR", "variant": "M",
                              "list_position": 3}),
            make_event(name="cart_added", ts=ts(2), **a,
                       props={"product_id": "P-1001", "sku": "P-1001-M", "quantity": 1, "price": 89.9,
                              "currency": "EUR", "cart_id": "C-77"}),
            make_event(name="checkout_started", ts=ts(3), **a,
                       props={"cart_id": "C-77", "item_count": 1, "cart_value": 89.9, "currency": "EUR",
                              "guest": True}),
            make_event(name="purchase_completed", ts=ts(5), **a,
                       props={"order_id": "ORD-2026-0001", "revenue": 89.9, "currency": "EUR", "tax": 14.98,
                              "shipping": 4.9, "item_count": 1, "payment_method": "card",
                              "first_order": True, "products": [{"product_id": "P-1001", "quantity": 1}]}),
        ]
        self.check_batch(self.daemon, self.db, [(e, STORED) for e in batch])
        rows = harness.event_rows(self.db, [e["event_id"] for e in batch])
        got = [(rows[e["event_id"]]["kind"], rows[e["event_id"]]["phase"]) for e in batch]
        expected = [planned_kind_phase(self.plan_doc, e["name"]) for e in batch]
        self.assertEqual(got, expected)
        # The funnel goes forward through the plan's phases.
        order = [p["name"] for p in self.plan_doc["phases"]]
        phases = [p for _, p in got if p is not None]
        self.assertEqual(phases, sorted(phases, key=order.index))
        self.assertEqual(got[-1][0], "macro")
        self.assertEqual(self.plan_doc["macro_conversion"], batch[-1]["name"])

    def test_documented_example(self):
        """docs/plan.md: this cart_added is rejected with out_of_range at
        $.props.quantity and not_in_enum at $.props.currency."""
        e = make_event(name="cart_added", anonymous_id="a1", consent={"analytics": True},
                       props={"product_id": "P-1001", "quantity": 0, "currency": "eur"})
        self.check_batch(self.daemon, self.db, [
            (e, rejected(("out_of_range", "$.props.quantity"), ("not_in_enum", "$.props.currency")))])

    def test_example_plan_rules(self):
        consent = {"analytics": True}
        mk = lambda name, props, **kw: make_event(name=name, props=props, consent=consent, **kw)  # noqa: E731
        self.check_batch(self.daemon, self.db, [
            (mk("product_viewed", {"product_id": "P-1"}, version=1), STORED),
            (mk("product_viewed", {"product_id": "P-1"}, version=3),
             rejected(("unsupported_version", "$.version"))),
            (mk("cart_updated", {"product_id": "P-1", "action": "add"}),
             Exp("stored", warnings=[("event_deprecated", "$.name")])),
            (mk("shipping_added", {"shipping_method": "express", "country": "fr"}),
             rejected(("pattern_mismatch", "$.props.country"))),
            (mk("purchase_completed", {"order_id": "ORD-1", "revenue": 1, "currency": "EUR", "item_count": 1,
                                       "discount": 5}),
             rejected(("unexpected_property", "$.props.discount"))),
            (mk("review_written", {"product_id": "P-1", "rating": 6}), rejected(("out_of_range", "$.props.rating"))),
            (mk("wishlist_added", {"product_id": "P-1", "Price": 3}), rejected(("name_format", "$.props.Price"))),
            # The example plan quarantines unknown events.
            (mk("gift_card_redeemed", {"amount": 10}), Exp("quarantined")),
        ])

    def test_example_plan_hashes_the_search_query(self):
        query = "jane.doe@example.com order 4711"
        e = make_event(name="search_performed", consent={"analytics": True},
                       props={"query": query, "results_count": 0})
        resp = self.post(e)
        self.assertAccepted(resp, 1)
        row = harness.event_rows(self.db, [e["event_id"]])[e["event_id"]]
        self.assertEqual(row["props"], {"query": harness.pii_hash(query, EXAMPLE_KEY), "results_count": 0})
        self.assertEqual(harness.tables_containing(self.db, query), {})


if __name__ == "__main__":
    harness.main()
