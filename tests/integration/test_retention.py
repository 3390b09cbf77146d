#!/usr/bin/env python3
"""Retention, applied by the writer's maintenance when it starts (and
hourly): with retention_days = N, the monthly partitions of events that end
before now - N days are dropped and the older rows of the partition the
cutoff falls in are deleted; rejected_retention_days deletes older
rejected events. 0 keeps everything."""

from datetime import datetime, timedelta, timezone

import harness
from harness import make_event, months_from, pg_array, psql, psql_value, rfc3339, utcnow
from admin_api import event_partitions, partition_end, partition_name, wait_for_maintenance


def month_start(dt, offset=0):
    y, m = months_from(dt, offset)
    return datetime(y, m, 1, tzinfo=timezone.utc)


def insert_events(db, times, site_id="shop"):
    """One events row per timestamp (creating partitions as needed);
    returns {event_id: ts}."""
    for ts in times:
        psql(db, "SELECT milepost_ensure_event_partition(:'t')", t=rfc3339(ts, "microseconds"))
    rows = psql(db, "INSERT INTO events (site_id, event_id, name, ts, received_at, anonymous_id)"
                    " SELECT :'s', gen_random_uuid(), 'page_view', t, t, 'anon-retention'"
                    " FROM unnest(:'ts'::timestamptz[]) AS t RETURNING event_id, ts",
                s=site_id, ts=pg_array(rfc3339(t, "microseconds") for t in times))
    ids = {r[0]: t for r, t in zip(rows, times)}
    if len(ids) != len(times):
        raise AssertionError("inserted %d rows, expected %d" % (len(ids), len(times)))
    return ids


def surviving_ids(db):
    return {r[0] for r in psql(db, "SELECT event_id FROM events")}


class RetentionTest(harness.TestCase):

    def migrated_database(self):
        """A fresh database with the schema (a daemon ran once, without retention)."""
        db = harness.fresh_database()
        d = self.start_daemon(db)
        wait_for_maintenance(d)
        self.assertEqual(d.stop(), 0)
        return db

    def restart_with(self, db, **config):
        """Starts a daemon and waits for its first maintenance; returns
        (daemon, counts, time before start, time after the log line)."""
        t0 = utcnow()
        d = self.start_daemon(db, **config)
        counts = wait_for_maintenance(d)
        return d, counts, t0, utcnow()

    def test_old_partitions_dropped_and_rows_deleted(self):
        days = 45
        db = self.migrated_database()
        now = utcnow()
        cutoff = now - timedelta(days=days)
        times = []
        for offset in (-26, -14, -7, -4, -3, -2):
            start = month_start(now, offset)
            times += [start, start + timedelta(days=14, hours=3)]
        times += [month_start(cutoff), cutoff - timedelta(days=1), cutoff - timedelta(hours=2),
                  cutoff + timedelta(hours=2), cutoff + timedelta(days=1), now - timedelta(days=1),
                  now - timedelta(minutes=1)]
        ids = insert_events(db, times)
        parts_before = event_partitions(db)
        self.assertIn(partition_name(month_start(now, -26)), parts_before)

        d, counts, t0, t1 = self.restart_with(db, retention_days=days)
        lo, hi = t0 - timedelta(days=days), t1 - timedelta(days=days)  # the daemon's cutoff is in [lo, hi]
        parts_after = event_partitions(db)
        dropped = [p for p in parts_before if partition_end(p) <= lo]
        kept = [p for p in parts_before if partition_end(p) > hi]
        self.assertTrue(dropped, "the test must have partitions to drop")
        for p in dropped:
            self.assertNotIn(p, parts_after, "partition wholly older than the cutoff not dropped")
            self.assertIsNone(psql_value(db, "SELECT to_regclass(:'p')::text", p=p))
        for p in kept:
            self.assertIn(p, parts_after, "partition reaching past the cutoff dropped")
        self.assertIn(partition_name(cutoff), parts_after)
        left = surviving_ids(db)
        for event_id, ts in ids.items():
            if ts < lo:
                self.assertNotIn(event_id, left, "event at %s older than the cutoff kept" % ts)
            elif ts >= hi:
                self.assertIn(event_id, left, "event at %s newer than the cutoff deleted" % ts)
        # The log's counts: partitions dropped, rows deleted from the others.
        self.assertEqual(counts["dropped_partitions"], len(dropped))
        deleted = [t for t in ids.values() if t < lo and partition_name(t) not in dropped]
        self.assertTrue(deleted, "the test must have rows to delete from a kept partition")
        self.assertEqual(counts["deleted_events"], len(deleted))
        self.assertEqual(d.stop(), 0)

        # Started again: nothing more to do.
        d, counts, _, _ = self.restart_with(db, retention_days=days)
        self.assertEqual((counts["dropped_partitions"], counts["deleted_events"]), (0, 0))
        self.assertEqual(event_partitions(db), parts_after)
        self.assertEqual(surviving_ids(db), left)

    def test_events_sent_with_old_timestamps(self):
        db = harness.fresh_database()
        d = self.start_daemon(db, max_event_age_days=36500)
        old = [make_event(ts="2001-03-04T05:06:07Z"), make_event(ts="2001-03-31T23:59:59.999Z"),
               make_event(ts="2003-07-01T00:00:00+02:00")]   # 2003-06-30 22:00 UTC
        recent = [make_event(ts=rfc3339(utcnow() - timedelta(days=2))), make_event()]
        resp = d.post_events({"batch": old + recent})
        self.assertAccepted(resp, 5)
        self.assertTrue({"events_2001_03", "events_2003_06"} <= set(event_partitions(db)))
        self.assertEqual(d.stop(), 0)

        d, counts, _, _ = self.restart_with(db, retention_days=365)
        parts = set(event_partitions(db))
        self.assertFalse({"events_2001_03", "events_2003_06"} & parts, "old partitions kept: %r" % parts)
        self.assertEqual(counts["dropped_partitions"], 2)
        self.assertEqual(harness.stored_event_ids(db), {e["event_id"] for e in recent})
        # The daemon still takes recent events; one older than
        # max_event_age_days (31 by default) is too_old, so it cannot bring
        # a dropped partition back.
        self.assertAccepted(d.post_events(make_event()), 1)
        late = make_event(ts="2001-03-05T00:00:00Z")
        resp = d.post_events(late)
        self.assertAccepted(resp, 0, [0])
        self.assertEqual(resp.body["rejected"][0]["errors"][0]["code"], "too_old")
        self.assertNotIn("events_2001_03", set(event_partitions(db)))

    def test_people_without_events_forgotten(self):
        """Once none of a person's events is left, its ids (identities) and
        merges go too, as its sessions do; a person with one recent event
        keeps its ids, also those seen only on old events."""
        db = harness.fresh_database()
        d = self.start_daemon(db, max_event_age_days=36500)
        old = "2001-03-04T05:06:07Z"
        gone = {k: "%s-%s" % (k, harness.new_id()) for k in ("anon", "user", "merged")}
        kept = {k: "%s-%s" % (k, harness.new_id()) for k in ("anon", "user", "merged")}
        for ids, last in ((gone, old), (kept, rfc3339(utcnow() - timedelta(days=1)))):
            for batch in ([make_event(ts=old, anonymous_id=ids["merged"])],
                          [make_event(ts=old, anonymous_id=ids["anon"])],
                          [make_event(ts=old, anonymous_id=ids["anon"], user_id=ids["user"])],
                          [make_event(ts=last, anonymous_id=ids["merged"], user_id=ids["user"])]):
                self.assertAccepted(d.post_events({"batch": batch}), 1)
        people = lambda ids: psql(db, "SELECT DISTINCT person_id FROM identities WHERE id = ANY(:'ids')",
                                  ids=pg_array(ids.values()))
        gone_person, kept_person = people(gone), people(kept)
        self.assertEqual((len(gone_person), len(kept_person)), (1, 1), "each is one person")
        merges = lambda p: int(psql_value(db, "SELECT count(*) FROM person_merges WHERE into_person = :'p'",
                                          p=p[0][0]))
        self.assertEqual((merges(gone_person), merges(kept_person)), (1, 1))
        self.assertEqual(d.stop(), 0)

        d, counts, _, _ = self.restart_with(db, retention_days=365)
        self.assertGreater(counts["dropped_partitions"], 0)
        for table in ("identities", "sessions"):
            n = lambda p: int(psql_value(db, "SELECT count(*) FROM %s WHERE person_id = :'p'" % table,
                                         p=p[0][0]))
            self.assertEqual(n(gone_person), 0, "%s of a person with no event left remain" % table)
            self.assertGreater(n(kept_person), 0, "%s of a person with a recent event went" % table)
        self.assertEqual((merges(gone_person), merges(kept_person)), (0, 1))
        self.assertEqual(people(kept), kept_person, "the recent person's old ids went")
        self.assertEqual(d.stop(), 0)

    def test_zero_keeps_everything(self):
        db = self.migrated_database()
        now = utcnow()
        ids = insert_events(db, [month_start(now, -30), month_start(now, -13) + timedelta(days=3),
                                 now - timedelta(days=40), now - timedelta(days=1)])
        d = self.start_daemon(db)
        resp = d.post_events(make_event(name="Bad_Name"))
        self.assertAccepted(resp, 0, [0])
        self.assertEqual(d.stop(), 0)
        psql(db, "UPDATE rejected_events SET received_at = now() - interval '400 days'")
        parts = event_partitions(db)
        for config in ({"retention_days": 0, "rejected_retention_days": 0},
                       {"retention_days": None, "rejected_retention_days": 0}):
            with self.subTest(config=config):
                d, counts, _, _ = self.restart_with(db, **config)
                self.assertEqual((counts["dropped_partitions"], counts["deleted_events"],
                                  counts["deleted_rejected"]), (0, 0, 0))
                self.assertEqual(event_partitions(db), parts)
                self.assertTrue(set(ids) <= surviving_ids(db))
                self.assertEqual(psql_value(db, "SELECT count(*) FROM rejected_events"), "1")
                self.assertEqual(d.stop(), 0)

    def age_rejected(self, db, request_id, ages):
        """Sets received_at of a request's rejected rows (by index) to now - age."""
        for index, age in ages.items():
            psql(db, "UPDATE rejected_events SET received_at = now() - :'a'::interval"
                     " WHERE request_id = :'r' AND event_index = :'i'", a=age, r=request_id, i=str(index))

    def rejected_indexes(self, db, request_id):
        return sorted(int(r[0]) for r in psql(db, "SELECT event_index FROM rejected_events"
                                                  " WHERE request_id = :'r'", r=request_id))

    def test_rejected_retention(self):
        db = harness.fresh_database()
        d = self.start_daemon(db, max_event_age_days=36500)
        resp = d.post_events({"batch": [make_event(name="Bad_Name") for _ in range(5)]
                              + [make_event(ts="2001-01-01T00:00:00Z")]})
        self.assertAccepted(resp, 1, range(5))
        rid = resp.headers["x-request-id"]
        self.assertEqual(d.stop(), 0)
        self.age_rejected(db, rid, {0: "11 days", 1: "10 days 1 hour", 2: "9 days 23 hours",
                                    3: "2 days", 4: "1 minute"})
        # Row 1 was replayed already: it goes all the same.
        psql(db, "UPDATE rejected_events SET replayed_at = now() WHERE request_id = :'r' AND event_index = 1",
             r=rid)
        events_before = harness.count_rows(db)["events"]
        d, counts, _, _ = self.restart_with(db, rejected_retention_days=10)
        self.assertEqual(self.rejected_indexes(db, rid), [2, 3, 4])
        self.assertEqual(counts["deleted_rejected"], 2)
        # retention_days is 0: events, however old, stay.
        self.assertEqual((counts["dropped_partitions"], counts["deleted_events"]), (0, 0))
        self.assertEqual(harness.count_rows(db)["events"], events_before)
        self.assertEqual(d.stop(), 0)

    def test_rejected_retention_default(self):
        """Without rejected_retention_days, rejected events are kept 30 days
        (the default of common/config.c)."""
        db = harness.fresh_database()
        d = self.start_daemon(db)
        resp = d.post_events({"batch": [make_event(name="Bad_Name") for _ in range(3)]})
        self.assertAccepted(resp, 0, range(3))
        rid = resp.headers["x-request-id"]
        self.assertEqual(d.stop(), 0)
        self.age_rejected(db, rid, {0: "31 days", 1: "29 days", 2: "1 day"})
        d, counts, _, _ = self.restart_with(db)
        self.assertEqual(self.rejected_indexes(db, rid), [1, 2])
        self.assertEqual(counts["deleted_rejected"], 1)

    def test_alert_history_retention(self):
        """alert_history_retention_days deletes the older transitions with
        their webhook deliveries, but not one whose delivery is pending; the
        default (365) keeps a year."""
        db = self.migrated_database()
        ages = {"old_done": "400 days", "old_pending": "400 days", "days_200": "200 days", "new": "1 day"}
        for name, age in ages.items():
            psql(db, "WITH e AS (INSERT INTO alert_events (site_id, rule_id, rule_name, from_state, to_state,"
                     " why, at) VALUES ('shop', 1, :'n', 'ok', 'firing', 'test', now() - :'a'::interval)"
                     " RETURNING id)"
                     " INSERT INTO alert_deliveries (site_id, event_id, url, payload, status, created_at)"
                     " SELECT 'shop', id, 'https://hooks.example/x', '{}', :'st', now() - :'a'::interval FROM e",
                 n=name, a=age, st="pending" if name == "old_pending" else "delivered")
        names = lambda: sorted(r[0] for r in psql(db, "SELECT rule_name FROM alert_events"))
        calls = lambda: int(psql_value(db, "SELECT count(*) FROM alert_deliveries"))
        d, counts, _, _ = self.restart_with(db)
        self.assertEqual(counts["deleted_alert_events"], 1)
        self.assertEqual(names(), ["days_200", "new", "old_pending"])
        self.assertEqual(calls(), 3, "the deleted transition's delivery went with it")
        self.assertEqual(d.stop(), 0)
        d, counts, _, _ = self.restart_with(db, alert_history_retention_days=30)
        self.assertEqual((counts["deleted_alert_events"], names(), calls()), (1, ["new", "old_pending"], 2))
        self.assertEqual(d.stop(), 0)
        d, counts, _, _ = self.restart_with(db, alert_history_retention_days=0)
        self.assertEqual((counts["deleted_alert_events"], names()), (0, ["new", "old_pending"]))

    def test_retention_covers_every_site(self):
        """Retention applies to every site alike."""
        db = self.migrated_database()
        now = utcnow()
        shop = insert_events(db, [now - timedelta(days=20), now - timedelta(days=5)], "shop")
        blog = insert_events(db, [now - timedelta(days=20), now - timedelta(days=5)], "blog")
        d, counts, _, _ = self.restart_with(db, retention_days=10)
        left = surviving_ids(db)
        for ids in (shop, blog):
            for event_id, ts in ids.items():
                self.assertEqual(event_id in left, ts > now - timedelta(days=10), "event at %s" % ts)


if __name__ == "__main__":
    harness.main()
