#!/usr/bin/env python3
"""Idempotency: an event repeated with the same event_id for the same site is
stored once and still counted as accepted. A repeat of an id that claims it
for another event (another name or person: an order id reused as the id)
is not answered stored: it is kept aside as a rejected event with the code
duplicate_conflict, and a replay stores it under a new id."""

import json

import threading
import time
from datetime import timedelta

import harness
from admin_api import key_entry, new_api_key, replay
from harness import BLOG_KEY, SHOP_KEY, make_event, psql, psql_value, rfc3339, utcnow

ADMIN = new_api_key("ak_admin")


class IdempotencyTest(harness.DaemonTestCase):

    # Events years old must still be taken (max_event_age_days).
    daemon_config = {"max_event_age_days": 36500}

    def assertStoredOnce(self, ids, site_id="shop"):
        self.assertEqual(harness.event_id_counts(self.db, ids, site_id), {i: 1 for i in ids},
                         "each event stored exactly once for %s" % site_id)
        rows = psql(self.db, "SELECT event_id, count(*) FROM event_ids WHERE site_id = :'s'"
                             " AND event_id = ANY (:'ids'::uuid[]) GROUP BY 1", s=site_id,
                    ids=harness.pg_array(ids))
        self.assertEqual({r[0]: int(r[1]) for r in rows}, {i: 1 for i in ids}, "event_ids rows")

    def test_retried_batch_stored_once(self):
        now = utcnow()
        events = [make_event(ts=rfc3339(now - timedelta(seconds=i))) for i in range(4)]
        for attempt in range(3):
            self.assertAccepted(self.post({"batch": events}), len(events))
        self.assertStoredOnce([e["event_id"] for e in events])

    def test_retried_single_event_stored_once(self):
        ev = make_event(ts=rfc3339(utcnow()))
        for attempt in range(3):
            self.assertAccepted(self.post(ev), 1)
        self.assertStoredOnce([ev["event_id"]])

    def test_partly_new_batch(self):
        """A retry that carries old and new events stores the new ones only once too."""
        old = [make_event() for _ in range(3)]
        self.assertAccepted(self.post({"batch": old}), 3)
        new = [make_event() for _ in range(2)]
        self.assertAccepted(self.post({"batch": old[:2] + new + old[2:]}), 5)
        self.assertStoredOnce([e["event_id"] for e in old + new])

    def test_same_id_twice_in_one_batch(self):
        ev = make_event(ts=rfc3339(utcnow()))
        other = make_event()
        self.assertAccepted(self.post({"batch": [ev, other, dict(ev)]}), 3)
        self.assertStoredOnce([ev["event_id"], other["event_id"]])

    def test_same_id_for_two_sites(self):
        ev = make_event(ts=rfc3339(utcnow()))
        self.assertAccepted(self.post(ev, key=SHOP_KEY), 1)
        self.assertAccepted(self.post(ev, key=BLOG_KEY), 1)
        self.assertStoredOnce([ev["event_id"]], "shop")
        self.assertStoredOnce([ev["event_id"]], "blog")

    def test_retry_without_ts(self):
        """Without ts the retry gets a new receive time, so a new ts: still stored once."""
        ev = make_event()
        self.assertAccepted(self.post(ev), 1)
        first = psql(self.db, "SELECT ts FROM events WHERE event_id = :'i'", i=ev["event_id"])
        time.sleep(1.1)  # the receive time must differ
        self.assertAccepted(self.post(ev), 1)
        self.assertAccepted(self.post({"batch": [ev]}), 1)
        self.assertStoredOnce([ev["event_id"]])
        self.assertEqual(psql(self.db, "SELECT ts FROM events WHERE event_id = :'i'", i=ev["event_id"]), first,
                         "the first copy is the one kept")

    def test_retry_with_other_month(self):
        """The same id with a ts in another month (another partition) is still the same event."""
        ev = make_event(ts="2021-03-05T12:00:00Z")
        self.assertAccepted(self.post(ev), 1)
        self.assertAccepted(self.post(dict(ev, ts=rfc3339(utcnow()))), 1)
        self.assertStoredOnce([ev["event_id"]])

    def test_concurrent_retries(self):
        """The same batch posted by several clients at once (e.g. retries racing
        each other through different writer threads) is stored once."""
        events = [make_event() for _ in range(10)]
        barrier = threading.Barrier(8)
        answers = []

        def client():
            barrier.wait()
            answers.append(self.post({"batch": events}))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(answers), 8, "every client got an answer")
        for resp in answers:
            self.assertAccepted(resp, 10)
        self.assertStoredOnce([e["event_id"] for e in events])

    def test_uuid_text_forms_are_one_id(self):
        """event_id is a UUID, not a string: upper case is the same id."""
        ev = make_event()
        self.assertAccepted(self.post(ev), 1)
        self.assertAccepted(self.post(dict(ev, event_id=ev["event_id"].upper())), 1)
        self.assertStoredOnce([ev["event_id"]])


class ClaimedIdTest(harness.DaemonTestCase):
    """Each test uses ids of its own, on one daemon."""

    daemon_config = {"api_keys": [key_entry("replayer", "admin", ADMIN)]}

    def stored(self, event_id):
        """[(name, anonymous_id, user_id)] of the events stored under event_id."""
        return [tuple(r) for r in psql(self.db, "SELECT name, anonymous_id, user_id FROM events"
                                       " WHERE site_id = 'shop' AND event_id = :'i'", i=event_id)]

    def conflict_rows(self, request_id):
        """The rejected rows of a request: {event_index: (error_codes, payload, event_name)}."""
        rows = psql(self.db, "SELECT event_index, error_codes::text, payload::text, event_name"
                             " FROM rejected_events WHERE site_id = 'shop' AND request_id = :'r'",
                    r=request_id)
        return {int(r[0]): (r[1], json.loads(r[2]), r[3]) for r in rows}

    def assertConflict(self, resp, indexes, accepted):
        rejected = self.assertAccepted(resp, accepted, indexes)
        for r in rejected:
            self.assertEqual([e["code"] for e in r["errors"]], ["duplicate_conflict"], r)
            self.assertEqual(r["errors"][0]["path"], "$.event_id", r)
        for i in indexes:
            self.assertEqual(resp.body["results"][i], "duplicate_conflict", resp.body)

    def test_same_id_for_another_name(self):
        order = make_event(name="purchase_completed", props={"order_id": "A-1"})
        self.assertAccepted(self.post(order), 1)
        other = dict(order, name="cart_added", props={"sku": "X"})
        resp = self.post({"batch": [make_event(), other]})
        self.assertConflict(resp, [1], 1)
        self.assertEqual(resp.body["results"][0], "stored")
        self.assertEqual(self.stored(order["event_id"]),
                         [("purchase_completed", order["anonymous_id"], None)], "the first stays")
        rows = self.conflict_rows(resp.headers["x-request-id"])
        self.assertEqual(set(rows), {1}, rows)
        codes, payload, name = rows[1]
        self.assertEqual((codes, name), ("{duplicate_conflict}", "cart_added"))
        self.assertNotIn("event_id", payload, "a replay must not reuse the claimed id")
        self.assertEqual((payload["name"], payload["anonymous_id"], payload["props"]),
                         ("cart_added", order["anonymous_id"], {"sku": "X"}), payload)

    def test_same_id_for_another_person(self):
        first = make_event(name="purchase_completed", user_id="user-a")
        self.assertAccepted(self.post(first), 1)
        for other in (dict(first, anonymous_id="anon-someone-else"),
                      dict(first, user_id="user-b"), {k: v for k, v in first.items() if k != "user_id"}):
            self.assertConflict(self.post(other), [0], 0)
        self.assertEqual(self.stored(first["event_id"]),
                         [("purchase_completed", first["anonymous_id"], "user-a")])

    def test_identical_retry_is_no_conflict(self):
        ev = make_event(name="cart_added", user_id="user-c", props={"sku": "Y"})
        self.assertAccepted(self.post(ev), 1)
        # What a retry may change is not what the event claims: ts, props, url.
        for again in (ev, dict(ev, ts=rfc3339(utcnow())), dict(ev, props={"sku": "Z"})):
            resp = self.post({"batch": [again]})
            self.assertAccepted(resp, 1)
            self.assertEqual(resp.body["results"], ["stored"])
            self.assertEqual(self.conflict_rows(resp.headers["x-request-id"]), {})
        self.assertEqual(len(self.stored(ev["event_id"])), 1)

    def test_conflict_within_one_batch(self):
        ev = make_event(name="checkout_started")
        other = dict(ev, name="cart_removed")
        resp = self.post({"batch": [ev, other, dict(ev), make_event()]})
        self.assertConflict(resp, [1], 3)
        self.assertEqual(resp.body["results"], ["stored", "duplicate_conflict", "stored", "stored"])
        self.assertEqual(self.stored(ev["event_id"]), [("checkout_started", ev["anonymous_id"], None)])
        self.assertEqual(set(self.conflict_rows(resp.headers["x-request-id"])), {1})

    def test_replay_stores_the_conflict_under_a_new_id(self):
        first = make_event(name="purchase_completed", props={"order_id": "B-7"})
        self.assertAccepted(self.post(first), 1)
        other = dict(first, name="purchase_completed", anonymous_id="anon-second-buyer",
                     props={"order_id": "B-7", "note": "second order"})
        resp = self.post(other)
        self.assertConflict(resp, [0], 0)
        rid = resp.headers["x-request-id"]
        answer = replay(self.daemon, ADMIN, site="shop")
        self.assertEqual(answer.status, 200, answer)
        new_id = psql_value(self.db, "SELECT replayed_event_id FROM rejected_events WHERE site_id = 'shop'"
                                     " AND request_id = :'r' AND replayed_at IS NOT NULL", r=rid)
        self.assertTrue(new_id and new_id != first["event_id"], new_id)
        self.assertTrue(harness.is_uuid_v7(new_id), new_id)
        self.assertEqual(self.stored(new_id), [("purchase_completed", "anon-second-buyer", None)])
        self.assertEqual(self.stored(first["event_id"]), [("purchase_completed", first["anonymous_id"], None)])
        props = psql_value(self.db, "SELECT props::text FROM events WHERE event_id = :'i'", i=new_id)
        self.assertEqual(json.loads(props), {"order_id": "B-7", "note": "second order"})
        # Sent again, the conflict is kept aside again: a new rejected row.
        self.assertConflict(self.post(other), [0], 0)

    def test_racing_claims_store_one(self):
        """Clients racing with one id for different people (through
        different writer threads): one is stored, every other is a
        conflict, none vanishes."""
        event_id = harness.new_id()
        barrier = threading.Barrier(8)
        answers = {}

        def client(k):
            ev = make_event(event_id=event_id, name="purchase_completed", anonymous_id="anon-racer-%d" % k)
            barrier.wait()
            answers[k] = self.post({"batch": [ev]})

        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(answers), 8, "every client got an answer")
        results = {k: r.body["results"][0] for k, r in answers.items()}
        stored = [k for k, r in results.items() if r == "stored"]
        self.assertEqual(len(stored), 1, results)
        self.assertEqual(sorted(results.values()), ["duplicate_conflict"] * 7 + ["stored"])
        self.assertEqual(self.stored(event_id), [("purchase_completed", "anon-racer-%d" % stored[0], None)])
        rows = psql(self.db, "SELECT payload->>'anonymous_id' FROM rejected_events WHERE site_id = 'shop'"
                             " AND error_codes = '{duplicate_conflict}' AND request_id = ANY (:'r'::text[])",
                    r=harness.pg_array([r.headers["x-request-id"] for r in answers.values()]))
        self.assertEqual(sorted(r[0] for r in rows),
                         sorted("anon-racer-%d" % k for k in results if k != stored[0]))

    def test_replay_that_conflicts_stays_pending(self):
        """A rejected event replayed after its id was stored for another
        event is kept aside again: its row stays pending, no row is added."""
        taken = make_event(name="purchase_completed")
        self.assertAccepted(self.post(taken), 1)
        # A row as the pipeline leaves one (here: before a plan fix).
        rid = "req-" + harness.new_id()
        psql(self.db, "INSERT INTO rejected_events (site_id, received_at, request_id, event_index, payload,"
                      " errors, error_codes) VALUES ('shop', now(), :'r', 3, :'p', '[]', '{missing_property}')",
             r=rid, p=json.dumps(dict(taken, name="cart_added", anonymous_id="anon-late")))
        answer = replay(self.daemon, ADMIN, site="shop", code="missing_property")
        self.assertEqual(answer.status, 200, answer)
        self.assertEqual((answer.body["examined"], answer.body["replayed"], answer.body["still_rejected"],
                          answer.body["still_rejected_by_code"]), (1, 0, 1, {"duplicate_conflict": 1}), answer.body)
        rows = psql(self.db, "SELECT event_index, replayed_at IS NULL FROM rejected_events WHERE request_id = :'r'",
                    r=rid)
        self.assertEqual(rows, [["3", "t"]])
        self.assertEqual(self.stored(taken["event_id"]), [("purchase_completed", taken["anonymous_id"], None)])


if __name__ == "__main__":
    harness.main()
