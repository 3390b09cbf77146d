#!/usr/bin/env python3
"""POST /api/v1/rejected/replay: pending rejected and quarantined events go
through validation again against the plan in force; those that pass are
stored (with the new plan's verdict) and their rows marked in the same
transaction, so that each is stored exactly once, also when replays race;
the others stay pending and are counted by code."""

import json
import threading
from datetime import timedelta

import admin_api
import harness
from harness import (BLOG_KEY, SHOP_KEY, event_rows, make_event, psql, psql_value, rfc3339, ts_utc_sql,
                     utc_text, utcnow)
from admin_api import api_call, key_entry, list_rejected, new_api_key, plan_doc, replay

ADMIN = new_api_key("ak_admin")
API_KEYS = [key_entry("replayer", "admin", ADMIN)]

PURCHASE_V1 = {"kind": "macro", "properties": {
    "order_id": {"type": "string", "required": True},
    "revenue": {"type": "number", "required": True, "min": 0}}}
PURCHASE_V2 = {"kind": "macro", "properties": {
    "order_id": {"type": "string", "required": True},
    "revenue": {"type": "number", "min": 0}}}

PLAN_V1 = plan_doc(1, {
    "page_viewed": {"kind": "page"},
    "checkout_started": {"kind": "milestone"},
    "purchase_completed": PURCHASE_V1,
})

# v2 knows promo_clicked and cart_added, and revenue is optional.
PLAN_V2 = plan_doc(2, {
    "page_viewed": {"kind": "page"},
    "promo_clicked": {"kind": "secondary"},
    "cart_added": {"kind": "milestone"},
    "checkout_started": {"kind": "milestone"},
    "purchase_completed": PURCHASE_V2,
}, milestones=["cart_added", "checkout_started", "purchase_completed"])

ANSWER_KEYS = {"site", "plan_version", "examined", "replayed", "dropped", "still_rejected",
               "still_rejected_by_code"}

REJECTED_SQL = ("SELECT id, request_id, event_index, payload::text, replayed_event_id, %s, %s,"
                " derived_anonymous_id FROM rejected_events WHERE site_id = :'s' ORDER BY id"
                % (ts_utc_sql("replayed_at"), ts_utc_sql("received_at")))


def ev(name, props=None, **fields):
    return make_event(name=name, props=props, **fields)


class ReplayCase(harness.TestCase):

    def start(self, plan, **config):
        """A fresh database and a daemon running plan (whose file can be
        rewritten for a reload); returns (db, daemon, plan_path)."""
        db = harness.fresh_database()
        plan_path = harness.write_plan(plan)
        config.setdefault("api_keys", API_KEYS)
        d = self.start_daemon(db, plan=plan_path, **config)
        return db, d, plan_path

    def switch_plan(self, daemon, plan_path, plan):
        harness.replace_file(plan_path, plan)
        daemon.reload()

    def replay_ok(self, daemon, **params):
        resp = replay(daemon, ADMIN, **params)
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertJsonType(resp)
        self.assertRequestId(resp)
        self.assertLessEqual(ANSWER_KEYS, set(resp.body), "answer keys of %r" % (resp.body,))
        return resp.body

    def assertCounts(self, body, site, plan_version, examined, replayed, dropped, by_code):
        self.assertEqual(body["site"], site)
        self.assertEqual(body["plan_version"], plan_version)
        self.assertEqual((body["examined"], body["replayed"], body["dropped"], body["still_rejected"]),
                         (examined, replayed, dropped, examined - replayed - dropped), "counts of %r" % (body,))
        self.assertEqual(body["still_rejected_by_code"], by_code, "still_rejected_by_code of %r" % (body,))

    def rejected(self, db, site="shop"):
        """{(request_id, event_index): row} of rejected_events."""
        out = {}
        for r in psql(db, REJECTED_SQL, s=site):
            out[(r[1], int(r[2]))] = {"id": int(r[0]), "payload": json.loads(r[3]),
                                      "replayed_event_id": r[4], "replayed_at": r[5],
                                      "received_at": r[6], "derived": r[7]}
        return out

    def send(self, daemon, events, key=SHOP_KEY, headers=None):
        """Posts one batch; returns its request id."""
        resp = daemon.post_events({"batch": events}, key=key, headers=headers)
        self.assertEqual(resp.status, 202, "%r" % (resp,))
        return resp.headers["x-request-id"]

    def site_events(self, db, site="shop"):
        return int(psql_value(db, "SELECT count(*) FROM events WHERE site_id = :'s'", s=site))


class ReplayScenarioTest(ReplayCase):

    def test_replay_after_plan_fix(self):
        db, d, plan_path = self.start(PLAN_V1)
        hour_ago = (utcnow() - timedelta(hours=1)).replace(microsecond=0)
        fixable = [ev("promo_clicked", {"slot": 1}),
                   make_event(name="promo_clicked", event_id=None),  # the daemon makes its id
                   ev("cart_added", {"sku": "A-1"}),
                   ev("purchase_completed", {"order_id": "O-1"}),
                   ev("purchase_completed", {"order_id": "O-2"}, ts=rfc3339(hour_ago, "seconds"))]
        still = [ev("purchase_completed", {"order_id": "O-3", "revenue": -5}),   # out_of_range
                 ev("wishlist_added"),                                          # unknown_event
                 ev("BadName"),                                                 # name_format
                 ev("purchase_completed", {"revenue": 3})]                      # missing_property
        control = ev("page_viewed")
        batch = fixable[:3] + [control] + fixable[3:] + still
        rid = self.send(d, batch)
        blog_rid = self.send(d, [ev("promo_clicked")], key=BLOG_KEY)
        self.assertEqual(self.site_events(db), 1)
        pending_before = self.rejected(db)
        self.assertEqual(len(pending_before), len(fixable) + len(still))

        # Under the same plan nothing passes, nothing is marked.
        body = self.replay_ok(d, site="shop")
        self.assertCounts(body, "shop", 1, 9, 0, 0, {"unknown_event": 4, "missing_property": 3,
                                                      "out_of_range": 1, "name_format": 1})
        self.assertEqual(self.rejected(db), pending_before)
        self.assertEqual(self.site_events(db), 1)

        self.switch_plan(d, plan_path, PLAN_V2)
        before = utcnow()
        body = self.replay_ok(d, site="shop")
        after = utcnow()
        self.assertCounts(body, "shop", 2, 9, 5, 0, {"out_of_range": 1, "unknown_event": 1,
                                                      "name_format": 1, "missing_property": 1})
        self.assertEqual(self.site_events(db), 1 + len(fixable))

        rows = self.rejected(db)
        index_of = {id(e): i for i, e in enumerate(batch)}
        stored = event_rows(db, [rows[(rid, index_of[id(e)])]["replayed_event_id"] for e in fixable], "shop")
        self.assertEqual(len(stored), len(fixable))
        for e in fixable:
            row = rows[(rid, index_of[id(e)])]
            with self.subTest(event=e):
                self.assertIsNotNone(row["replayed_at"], "replayed row not marked")
                self.assertTrue(utc_text(before - timedelta(seconds=5)) <= row["replayed_at"]
                                <= utc_text(after + timedelta(seconds=5)), row["replayed_at"])
                if "event_id" in e:
                    self.assertEqual(row["replayed_event_id"], e["event_id"])
                else:
                    self.assertTrue(harness.is_uuid_v7(row["replayed_event_id"]), row["replayed_event_id"])
                s = stored[row["replayed_event_id"]]
                expected_kind = PLAN_V2["events"][e["name"]]["kind"]
                expected_phase = "decide" if expected_kind in ("milestone", "macro") else None
                self.assertEqual((s["name"], s["plan_version"], s["kind"], s["phase"]),
                                 (e["name"], 2, expected_kind, expected_phase))
                self.assertEqual(s["anonymous_id"], e["anonymous_id"])
                self.assertEqual(s["props"], e.get("props") or {})
        # Times: the original reception; ts as sent, else the reception.
        times = {r[0]: (r[1], r[2]) for r in psql(
            db, "SELECT event_id, %s, %s FROM events WHERE site_id = 'shop'"
            % (ts_utc_sql("ts"), ts_utc_sql("received_at")))}
        for e in fixable:
            row = rows[(rid, index_of[id(e)])]
            ts, received = times[row["replayed_event_id"]]
            self.assertEqual(received, row["received_at"], "received_at of a replayed event")
            self.assertEqual(ts, utc_text(hour_ago) if "ts" in e else row["received_at"], "ts")
        for e in still:
            self.assertIsNone(rows[(rid, index_of[id(e)])]["replayed_at"], "an invalid event was marked")
            self.assertIsNone(rows[(rid, index_of[id(e)])]["replayed_event_id"])
        # The other site's quarantined event is still pending.
        self.assertIsNone(self.rejected(db, "blog")[(blog_rid, 0)]["replayed_at"])
        self.assertEqual(self.site_events(db, "blog"), 0)

        # Listing: the replayed rows say so.
        listing = list_rejected(d, ADMIN, site="shop", replayed="true").body
        self.assertEqual(sorted(i["replayed_event_id"] for i in listing["items"]),
                         sorted(rows[(rid, index_of[id(e)])]["replayed_event_id"] for e in fixable))
        self.assertEqual(list_rejected(d, ADMIN, site="shop", replayed="false").body["summary"]["total"],
                         len(still))

        # Again: only the invalid ones are examined; nothing is stored twice.
        body = self.replay_ok(d, site="shop")
        self.assertCounts(body, "shop", 2, len(still), 0, 0, {"out_of_range": 1, "unknown_event": 1,
                                                               "name_format": 1, "missing_property": 1})
        self.assertEqual(self.site_events(db), 1 + len(fixable))
        self.assertEqual(self.rejected(db), rows)
        self.assertEqual(psql_value(db, "SELECT count(*) FROM (SELECT event_id FROM events"
                                        " GROUP BY event_id HAVING count(*) > 1) x"), "0")

        # The blog's turn.
        body = self.replay_ok(d, site="blog")
        self.assertCounts(body, "blog", 2, 1, 1, 0, {})
        self.assertEqual(self.site_events(db, "blog"), 1)
        self.assertEqual(d.stop(), 0)

    def test_replay_with_everything_valid_examines_nothing_twice(self):
        db, d, plan_path = self.start(PLAN_V1)
        events = [ev("promo_clicked") for _ in range(4)]
        self.send(d, events)
        self.switch_plan(d, plan_path, PLAN_V2)
        self.assertCounts(self.replay_ok(d, site="shop"), "shop", 2, 4, 4, 0, {})
        self.assertCounts(self.replay_ok(d, site="shop"), "shop", 2, 0, 0, 0, {})
        self.assertEqual(harness.event_id_counts(db, [e["event_id"] for e in events]),
                         {e["event_id"]: 1 for e in events})

    def test_replay_filters(self):
        db, d, plan_path = self.start(PLAN_V1)
        promos = [ev("promo_clicked") for _ in range(3)]
        carts = [ev("cart_added") for _ in range(2)]
        purchases = [ev("purchase_completed", {"order_id": "O-%d" % i}) for i in range(3)]
        rid = self.send(d, promos + carts + purchases)
        self.switch_plan(d, plan_path, PLAN_V2)

        def marked():
            return {e["event_id"] for e in promos + carts + purchases} & {
                r["replayed_event_id"] for r in self.rejected(db).values()}

        self.assertCounts(self.replay_ok(d, site="shop", event="promo_clicked"), "shop", 2, 3, 3, 0, {})
        self.assertEqual(marked(), {e["event_id"] for e in promos})
        # limit takes the oldest pending rows first.
        self.assertCounts(self.replay_ok(d, site="shop", code="missing_property", limit=1),
                          "shop", 2, 1, 1, 0, {})
        self.assertEqual(marked(), {e["event_id"] for e in promos + purchases[:1]})
        # Time window: the carts made a day old.
        day_ago = (utcnow() - timedelta(days=1)).replace(microsecond=0)
        psql(db, "UPDATE rejected_events SET received_at = :'t' WHERE request_id = :'r'"
                 " AND event_index IN (3, 4)", t=rfc3339(day_ago, "seconds"), r=rid)
        self.assertCounts(self.replay_ok(d, site="shop", since=rfc3339(utcnow() + timedelta(minutes=5))),
                          "shop", 2, 0, 0, 0, {})
        self.assertCounts(self.replay_ok(d, site="shop", until=rfc3339(day_ago + timedelta(seconds=1))),
                          "shop", 2, 2, 2, 0, {})
        self.assertEqual(marked(), {e["event_id"] for e in promos + purchases[:1] + carts})
        self.assertCounts(self.replay_ok(d, site="shop", since=rfc3339(day_ago + timedelta(seconds=1))),
                          "shop", 2, 2, 2, 0, {})
        self.assertEqual(marked(), {e["event_id"] for e in promos + carts + purchases})
        self.assertEqual(self.site_events(db), 8)
        for params in ({"limit": "0"}, {"limit": "10001"}, {"limit": "x"}, {"since": "yesterday"},
                       {"until": "2026-02-30T00:00:00Z"}):
            with self.subTest(params=params):
                self.assertError(replay(d, ADMIN, site="shop", **params), 400, "invalid_parameter")
        self.assertEqual(self.replay_ok(d, site="shop", limit=10000)["examined"], 0)

    def test_replay_drops_without_consent(self):
        plan_v2 = json.loads(json.dumps(PLAN_V2))
        plan_v2["events"]["promo_clicked"]["consent"] = "marketing"
        db, d, plan_path = self.start(PLAN_V1, consent_mode="drop")
        granted = ev("promo_clicked", consent={"marketing": True})
        refused = ev("promo_clicked", consent={"marketing": False})
        gpc = ev("promo_clicked", consent={"marketing": True})    # but the browser sent Sec-GPC
        rid = self.send(d, [granted, refused])
        gpc_rid = self.send(d, [gpc], headers={"Sec-GPC": "1"})
        self.switch_plan(d, plan_path, plan_v2)
        self.assertCounts(self.replay_ok(d, site="shop"), "shop", 2, 3, 1, 2, {})
        self.assertEqual(harness.event_id_counts(db, [granted["event_id"], refused["event_id"], gpc["event_id"]]),
                         {granted["event_id"]: 1})
        rows = self.rejected(db)
        for k in ((rid, 1), (gpc_rid, 0)):
            self.assertIsNotNone(rows[k]["replayed_at"], "a dropped row is done with")
            self.assertIsNone(rows[k]["replayed_event_id"], "a dropped row names no event")
        self.assertEqual(rows[(rid, 0)]["replayed_event_id"], granted["event_id"])
        self.assertCounts(self.replay_ok(d, site="shop"), "shop", 2, 0, 0, 0, {})

    def test_replay_anonymises_without_consent(self):
        plan_v2 = json.loads(json.dumps(PLAN_V2))
        plan_v2["events"]["promo_clicked"]["consent"] = "marketing"
        db, d, plan_path = self.start(PLAN_V1, consent_mode="anonymous")
        e = ev("promo_clicked", user_id="user-77", session_id="s-1", consent={"marketing": False})
        self.send(d, [e])
        self.switch_plan(d, plan_path, plan_v2)
        self.assertCounts(self.replay_ok(d, site="shop"), "shop", 2, 1, 1, 0, {})
        row = event_rows(db, [e["event_id"]])[e["event_id"]]
        self.assertEqual((row["anonymous_id"], row["user_id"], row["session_id"], row["consented"]),
                         (None, None, None, False))

    def test_cookieless_event_keeps_its_derived_id(self):
        db, d, plan_path = self.start(PLAN_V1)
        ua = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
        e = make_event(name="promo_clicked", anonymous_id=None)
        rid = self.send(d, [e], headers={"User-Agent": ua})
        derived = self.rejected(db)[(rid, 0)]["derived"]
        self.assertTrue(derived and derived.startswith("v_"), derived)
        self.assertEqual(derived, harness.visitor_id(harness.todays_salt(db), "shop", "127.0.0.1", ua))
        self.switch_plan(d, plan_path, PLAN_V2)
        # The replay request comes from another browser: the stored id counts.
        resp = api_call(d, "POST", "/api/v1/rejected/replay", ADMIN, {"site": "shop"})
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertEqual(resp.body["replayed"], 1)
        row = event_rows(db, [e["event_id"]])[e["event_id"]]
        self.assertEqual(row["anonymous_id"], derived)
        self.assertIsNone(row["user_id"])


class ReplayExactlyOnceTest(ReplayCase):

    def test_event_sent_again_meanwhile(self):
        db, d, plan_path = self.start(PLAN_V1)
        e = ev("purchase_completed", {"order_id": "O-9"})
        self.send(d, [e])
        fixed = dict(e, props={"order_id": "O-9", "revenue": 12.5})
        self.send(d, [fixed])
        self.assertEqual(harness.event_id_counts(db, [e["event_id"]]), {e["event_id"]: 1})
        self.switch_plan(d, plan_path, PLAN_V2)
        body = self.replay_ok(d, site="shop")
        self.assertEqual(body["examined"], 1)
        self.assertEqual(harness.event_id_counts(db, [e["event_id"]]), {e["event_id"]: 1},
                         "the replay stored the event a second time")
        self.assertEqual(event_rows(db, [e["event_id"]])[e["event_id"]]["props"], fixed["props"],
                         "the event sent again is the one kept")
        self.assertEqual(self.replay_ok(d, site="shop")["examined"], 0)

    def test_event_sent_again_then_forgotten_by_dedup(self):
        """The event was sent again and stored, and its id has since left the
        dedup window (event_ids pruned): the replay must neither fail nor
        store it twice, and the other pending events must still replay."""
        db, d, plan_path = self.start(PLAN_V1)
        e = ev("purchase_completed", {"order_id": "O-7"}, ts=rfc3339(utcnow() - timedelta(days=3), "seconds"))
        other = ev("promo_clicked")
        self.send(d, [e, other])
        fixed = dict(e, props={"order_id": "O-7", "revenue": 3})
        self.send(d, [fixed])
        self.assertEqual(harness.event_id_counts(db, [e["event_id"]]), {e["event_id"]: 1})
        # Past the (default, 168 h) window: the next upkeep forgets the id.
        psql(db, "UPDATE event_ids SET received_at = now() - interval '200 hours'")
        self.assertEqual(d.stop(), 0)
        harness.replace_file(plan_path, PLAN_V2)
        d = self.start_daemon(db, plan=plan_path, api_keys=API_KEYS)
        self.assertEqual(admin_api.wait_for_maintenance(d)["forgotten_ids"], 1)
        body = self.replay_ok(d, site="shop")
        self.assertEqual(body["examined"], 2)
        self.assertEqual(harness.event_id_counts(db, [e["event_id"], other["event_id"]]),
                         {e["event_id"]: 1, other["event_id"]: 1})

    def test_rejected_twice_replayed_once(self):
        """A client retried a rejected event: two rows, one event."""
        db, d, plan_path = self.start(PLAN_V1)
        e = ev("promo_clicked")
        self.send(d, [e])
        self.send(d, [e])
        other = ev("promo_clicked")
        self.send(d, [other, e])
        self.switch_plan(d, plan_path, PLAN_V2)
        body = self.replay_ok(d, site="shop")
        self.assertEqual((body["examined"], body["still_rejected"]), (4, 0))
        self.assertEqual(harness.event_id_counts(db, [e["event_id"], other["event_id"]]),
                         {e["event_id"]: 1, other["event_id"]: 1})
        self.assertEqual(self.site_events(db), 2)
        self.assertEqual(self.replay_ok(d, site="shop")["examined"], 0)
        self.assertEqual(self.site_events(db), 2)

    def fire(self, targets):
        """POSTs a replay to each (daemon, params) at the same moment;
        returns the responses."""
        barrier = threading.Barrier(len(targets))
        out = [None] * len(targets)

        def run(i, daemon, params):
            barrier.wait()
            try:
                out[i] = replay(daemon, ADMIN, **params)
            except Exception as exc:  # reported below
                out[i] = exc

        threads = [threading.Thread(target=run, args=(i, t[0], t[1])) for i, t in enumerate(targets)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return out

    def check_race(self, db, responses, events):
        stored = 0
        for resp in responses:
            self.assertIsInstance(resp, harness.Response, "%r" % (resp,))
            if resp.status == 409:
                self.assertError(resp, 409, "replay_in_progress")
            else:
                self.assertEqual(resp.status, 200, "%r" % (resp,))
                stored += resp.body["replayed"]
        self.assertTrue(any(r.status == 200 for r in responses), "no replay ran")
        ids = [e["event_id"] for e in events]
        self.assertEqual(harness.event_id_counts(db, ids), {i: 1 for i in ids}, "each event stored once")
        self.assertEqual(stored, len(events), "replayed counts of the answers")

    def test_concurrent_replays(self):
        db, d, plan_path = self.start(PLAN_V1)
        rounds = []
        for r in range(3):
            name = "round%d_clicked" % r
            events = [ev(name, {"n": i}) for i in range(300)]
            self.send(d, events)
            rounds.append((name, events))
        plan_v3 = json.loads(json.dumps(PLAN_V2))
        for name, _ in rounds:
            plan_v3["events"][name] = {"kind": "secondary"}
        self.switch_plan(d, plan_path, plan_v3)
        for name, events in rounds:
            with self.subTest(event=name):
                responses = self.fire([(d, {"site": "shop", "event": name})] * 3)
                self.check_race(db, responses, events)
        self.assertEqual(self.site_events(db), 900)
        self.assertEqual(psql_value(db, "SELECT count(*) FROM rejected_events WHERE replayed_at IS NULL"), "0")

    def test_concurrent_replays_on_two_collectors(self):
        db, d1, plan_path = self.start(PLAN_V1)
        events = [ev("promo_clicked", {"n": i}) for i in range(300)]
        self.send(d1, events)
        self.switch_plan(d1, plan_path, PLAN_V2)
        d2 = self.start_daemon(db, plan=plan_path, api_keys=API_KEYS)
        responses = self.fire([(d1, {"site": "shop"}), (d2, {"site": "shop"}),
                               (d1, {"site": "shop"}), (d2, {"site": "shop"})])
        self.check_race(db, responses, events)
        self.assertEqual(self.site_events(db), 300)


class ReplayPiiTest(ReplayCase):
    """A property hashed at ingest is not hashed again, nor checked again as
    if the hash were the value sent."""

    KEY = "replay-test-pii-key-0123456789"

    def plans(self, pattern):
        email = {"type": "string", "max_length": 254, "pii": "hash"}
        if pattern:
            email["pattern"] = "@"
        v1 = plan_doc(1, {"purchase_completed": {"kind": "macro"},
                          "signup_completed": {"kind": "secondary", "properties": {
                              "email": email, "plan_id": {"type": "string", "required": True}}}})
        v2 = json.loads(json.dumps(v1))
        v2["version"] = 2
        v2["events"]["signup_completed"]["properties"]["plan_id"]["required"] = False
        return v1, v2

    def check(self, pattern):
        v1, v2 = self.plans(pattern)
        db, d, plan_path = self.start(v1, pii_hash_key=self.KEY)
        e = ev("signup_completed", {"email": "ann@example.com"})
        rid = self.send(d, [e])
        hashed = harness.pii_hash("ann@example.com", self.KEY)
        self.assertEqual(self.rejected(db)[(rid, 0)]["payload"]["props"], {"email": hashed},
                         "the rejected row holds the hash, not the address")
        self.switch_plan(d, plan_path, v2)
        body = self.replay_ok(d, site="shop")
        self.assertCounts(body, "shop", 2, 1, 1, 0, {})
        self.assertEqual(event_rows(db, [e["event_id"]])[e["event_id"]]["props"], {"email": hashed},
                         "hashed once")

    def test_hashed_property_replayed(self):
        self.check(pattern=False)

    def test_hashed_property_with_pattern_replayed(self):
        self.check(pattern=True)


if __name__ == "__main__":
    harness.main()
