#!/usr/bin/env python3
"""Idempotency: an event repeated with the same event_id for the same site is
stored once and still counted as accepted."""

import threading
import time
from datetime import timedelta

import harness
from harness import BLOG_KEY, SHOP_KEY, make_event, psql, rfc3339, utcnow


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


if __name__ == "__main__":
    harness.main()
