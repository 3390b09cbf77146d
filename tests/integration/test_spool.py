#!/usr/bin/env python3
"""The on-disk spool and the faults it is for. Clients here retry each batch
until it is answered 2xx, as the snippet and Segment's libraries do; every
id answered 2xx must end up in PostgreSQL exactly once:

- PostgreSQL stops in the middle of a load and comes back: requests during
  the outage are acknowledged from the spool, /readyz stays 200 and says
  the database is down, the spool is replayed when it is back;
- the spool reaches spool_max_bytes: 503 spool_full with Retry-After, and
  /readyz 503;
- the daemon is killed (SIGKILL) in the middle of a load, with the
  database up, and with records still in the spool (replayed at start);
- no spool file holds the client's IP address;
- a torn record at a file's end (a write that never finished) is dropped,
  damaged bytes are set aside under failed/, the good records are stored;
- a spooled repeat of a stored id that claims it for another event is kept
  aside as duplicate_conflict when replayed, once; records of the previous
  format (MPS1, data/spool-v1.spool, written by the binary before it) are
  still replayed."""

import glob
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid

import harness
from harness import PrivateCluster, make_event

RETRY_AFTER_S = 1
REPLAY_S = 40      # PostgreSQL back until the spool is empty (reconnect backoff included)


class Load:
    """Threads posting batches of new events; each batch is retried (same
    ids) until it is answered 2xx or the load stops. acked: ids answered
    2xx; statuses: every status seen."""

    def __init__(self, daemon, threads=3, batch=5, marker=None):
        self.daemon, self.batch, self.marker = daemon, batch, marker or uuid.uuid4().hex
        self.acked, self.statuses, self.lock = set(), {}, threading.Lock()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def _post_until_acked(self, events):
        while True:
            try:
                resp = self.daemon.post_events({"batch": events}, timeout=15)
                status = resp.status
            except (OSError, socket.timeout, ConnectionError):
                status = "no answer"
            with self.lock:
                self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 202:
                with self.lock:
                    self.acked |= {e["event_id"] for e in events}
                return
            if self.stopping.is_set():
                return
            time.sleep(0.2)

    def _run(self):
        while not self.stopping.is_set():
            events = [make_event(name="page_view", props={"marker": self.marker})
                      for _ in range(self.batch)]
            self._post_until_acked(events)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(30)
        return self.acked


def metric(daemon, name):
    for line in daemon.get("/metrics").raw.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split(" ")[1])
    raise AssertionError("no metric %s" % name)


class SpoolTest(harness.TestCase):

    def setUp(self):
        super().setUp()
        self.cluster = PrivateCluster()
        self.cluster.start()
        self.db = self.cluster.create_database()
        self.spool = tempfile.mkdtemp(prefix="mp-spool-")

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.cluster.destroy()
            shutil.rmtree(self.spool, ignore_errors=True)

    def start(self, **kw):
        kw.setdefault("spool_dir", self.spool)
        kw.setdefault("retry_after_s", RETRY_AFTER_S)
        return self.start_daemon(self.db, **kw)

    def spool_files(self):
        return sorted(glob.glob(os.path.join(self.spool, "*.spool")))

    def wait_replayed(self):
        self.poll("the spool replayed", lambda: self.cluster.running and not self.spool_files()
                  and metric(self.daemon, "milepost_spool_bytes") == 0, REPLAY_S)

    def crash_and_replay_again(self, saved):
        """A crash between a replay's commit and its files' removal: the
        files ({path: bytes}) come back as they were, and replay again."""
        self.daemon.kill()
        for f, data in saved.items():
            with open(f, "wb") as out:
                out.write(data)
        self.daemon._start(self.daemon.port)
        self.daemon.wait_for("/readyz")
        self.wait_replayed()

    def assertStoredOnce(self, acked):
        # The database is this test's own: every event in it is one of ours.
        counts = {r[0]: int(r[1]) for r in harness.psql(
            self.db, "SELECT event_id, count(*) FROM events GROUP BY event_id")}
        counts = {i: n for i, n in counts.items() if i in acked}
        missing = acked - set(counts)
        twice = {i: n for i, n in counts.items() if n != 1}
        self.assertFalse(missing, "%d acknowledged ids not stored, e.g. %s" % (len(missing), sorted(missing)[:3]))
        self.assertFalse(twice, "ids stored more than once: %s" % list(twice.items())[:3])

    def test_outage_during_load(self):
        self.daemon = self.start()
        load = Load(self.daemon)
        time.sleep(1.5)
        self.cluster.stop("fast")
        self.poll("readyz says the database is down",
                  lambda: self.daemon.get("/readyz").body.get("database") == "down", 20)
        resp = self.daemon.get("/readyz")
        self.assertEqual(resp.status, 200, "with a spool, ready while the database is away: %r" % (resp,))
        self.assertEqual(resp.body["spool"]["full"], False)
        before = metric(self.daemon, "milepost_spool_appended_total")
        self.poll("requests acknowledged from the spool",
                  lambda: metric(self.daemon, "milepost_spool_appended_total") >= before + 10, 20)
        self.assertTrue(self.spool_files(), "spool files while the database is down")
        # Events with ids made by the collector: replay must not store them twice either.
        marker = uuid.uuid4().hex
        for _ in range(5):
            ev = make_event(event_id=None, props={"marker": marker})
            self.assertEqual(self.daemon.post_events(ev).status, 202)
        self.cluster.start()
        time.sleep(2)
        acked = load.stop()
        self.wait_replayed()
        self.assertStoredOnce(acked)
        self.assertEqual(int(harness.psql_value(
            self.db, "SELECT count(*) FROM events WHERE props->>'marker' = :'m'", m=marker)), 5)
        self.assertGreater(metric(self.daemon, "milepost_spool_replayed_total"), 0)
        self.assertEqual(self.daemon.get("/readyz").body["database"], "up")
        self.assertPromtoolClean(self.daemon.get("/metrics").raw.decode())
        print("# outage: %d events acknowledged, statuses %s, %d spooled requests replayed"
              % (len(acked), load.statuses, metric(self.daemon, "milepost_spool_replayed_total")))

    def test_spool_full(self):
        self.daemon = self.start(spool_max_bytes=1048576, max_body_bytes=65536)
        self.cluster.stop("fast")
        self.poll("database down", lambda: self.daemon.get("/readyz").body.get("database") == "down"
                  or self.daemon.get("/readyz").status == 503, 20)
        acked, refused, big = set(), 0, "x" * 2000
        for _ in range(400):
            events = [make_event(props={"pad": big}) for _ in range(10)]
            resp = self.daemon.post_events({"batch": events}, timeout=15)
            if resp.status == 202:
                acked |= {e["event_id"] for e in events}
                continue
            self.assertError(resp, 503, "spool_full")
            self.assertEqual(resp.headers.get("retry-after"), str(RETRY_AFTER_S))
            refused += 1
            break
        self.assertEqual(refused, 1, "the spool never filled up")
        self.assertGreater(len(acked), 0)
        resp = self.daemon.get("/readyz")
        self.assertError(resp, 503, "not_ready")
        self.assertGreater(metric(self.daemon, "milepost_spool_full_total"), 0)
        self.assertLessEqual(sum(os.path.getsize(f) for f in self.spool_files()), 1048576)
        self.cluster.start()
        self.wait_replayed()
        self.assertStoredOnce(acked)
        print("# spool full after %d acknowledged events" % len(acked))

    def test_kill_during_load(self):
        self.daemon = self.start()
        load = Load(self.daemon, threads=4)
        time.sleep(2)
        self.daemon.kill()
        time.sleep(0.5)
        self.daemon._start(self.daemon.port)
        self.daemon.wait_for("/readyz")
        time.sleep(1.5)
        acked = load.stop()
        self.assertStoredOnce(acked)
        self.assertIn("no answer", load.statuses, "the kill cut some requests: %s" % load.statuses)
        print("# kill -9 under load: %d acknowledged events, statuses %s" % (len(acked), load.statuses))

    def test_kill_with_spooled_records_then_replay_at_start(self):
        self.daemon = self.start(client_ip_header="X-Forwarded-For")
        self.cluster.stop("fast")
        self.poll("database down", lambda: self.daemon.get("/readyz").body.get("database") == "down", 20)
        acked, body_bytes = set(), 0
        for i in range(20):
            ev = make_event(context={"ip": "198.51.100.77", "page": {"url": "https://shop.example/p/%d?utm_source=news" % i}},
                            props={"sku": "SKU-%04d" % i, "price": 19.9 + i})
            body_bytes += len(json.dumps(ev))
            resp = self.daemon.post_events(ev, headers={"X-Forwarded-For": "203.0.113.77"})
            self.assertEqual(resp.status, 202, resp)
            acked.add(ev["event_id"])
        files = self.spool_files()
        self.assertTrue(files)
        spooled = sum(os.path.getsize(f) for f in files)
        print("# 20 single-event requests, %d bytes of JSON: %d bytes spooled (%.2f x)"
              % (body_bytes, spooled, spooled / body_bytes))
        for f in files:
            data = open(f, "rb").read()
            for ip in (b"203.0.113.77", b"198.51.100.77"):
                self.assertNotIn(ip, data, "%s holds a client address" % f)
        self.daemon.kill()
        # A record whose write never finished, at the end of the last file;
        # and a file of bytes that are no records.
        with open(files[-1], "ab") as f:
            f.write(b"MPS1\x00\x10\x00\x00")
        damaged = os.path.join(self.spool, "%020d.spool" % 99999)
        with open(damaged, "wb") as f:
            f.write(b"not a spool record at all")
        self.cluster.start()
        self.daemon._start(self.daemon.port)
        self.daemon.wait_for("/readyz")
        self.wait_replayed()
        self.assertStoredOnce(acked)
        aside = os.listdir(os.path.join(self.spool, "failed"))
        self.assertEqual(aside, ["%020d.spool.damaged" % 99999])
        log = self.daemon.log()
        self.assertIn("whose write did not finish", log)
        self.assertIn("no record", log)

    def test_record_replayed_after_its_commit_adds_nothing(self):
        """A crash between a record's commit and its file's removal replays
        it again: its events (client and generated ids), its rejected rows
        and its sessions' event counts must not grow."""
        self.daemon = self.start()
        self.cluster.stop("fast")
        self.poll("database down", lambda: self.daemon.get("/readyz").body.get("database") == "down", 20)
        anon = "anon-replay-" + uuid.uuid4().hex[:8]
        batch = [make_event(anonymous_id=anon, session_id="s-" + anon),
                 make_event(anonymous_id=anon, session_id="s-" + anon, event_id=None),
                 make_event(anonymous_id=anon, name="Not A Name")]
        resp = self.daemon.post_events({"batch": batch})
        self.assertAccepted(resp, 2, [2])
        saved = {f: open(f, "rb").read() for f in self.spool_files()}
        self.assertTrue(saved)
        self.cluster.start()
        self.wait_replayed()

        def stored():
            return (harness.psql(self.db, "SELECT count(*) FROM events WHERE anonymous_id = :'a'", a=anon),
                    harness.psql(self.db, "SELECT count(*) FROM rejected_events"
                                          " WHERE payload->>'anonymous_id' = :'a'", a=anon),
                    harness.psql(self.db, "SELECT events FROM sessions WHERE anonymous_id = :'a'", a=anon))
        first = stored()
        self.assertEqual(first, ([["2"]], [["1"]], [["2"]]))
        self.crash_and_replay_again(saved)
        self.assertEqual(stored(), first)

    def test_spooled_conflict_and_version_1_record(self):
        self.daemon = self.start()
        first = make_event(name="purchase_completed", anonymous_id="anon-first-buyer")
        self.assertAccepted(self.daemon.post_events(first), 1)
        self.cluster.stop("fast")
        self.poll("database down", lambda: self.daemon.get("/readyz").body.get("database") == "down", 20)
        # Spooled before the writer could judge it: answered stored.
        resp = self.daemon.post_events({"batch": [make_event(), dict(first, anonymous_id="anon-second-buyer")]})
        self.assertAccepted(resp, 2)
        rid = resp.headers["x-request-id"]
        self.daemon.kill()
        # A record the previous binary spooled (x86-64 byte order): a client
        # id, a generated id and a rejected event, request 0130856a00000005.
        v1 = os.path.join(self.spool, "%020d.spool" % 99990)
        shutil.copy(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "spool-v1.spool"), v1)
        saved = {f: open(f, "rb").read() for f in self.spool_files()}
        self.assertGreater(len(saved), 1, "the conflict was spooled")
        self.cluster.start()
        self.daemon._start(self.daemon.port)
        self.daemon.wait_for("/readyz")
        self.wait_replayed()

        def state():
            return (harness.psql(self.db, "SELECT anonymous_id FROM events WHERE event_id = :'i'",
                                 i=first["event_id"]),
                    harness.psql(self.db, "SELECT event_index, error_codes::text, payload->>'anonymous_id'"
                                          " FROM rejected_events WHERE request_id = :'r'", r=rid),
                    harness.psql(self.db, "SELECT count(*), count(DISTINCT event_id) FROM events"
                                          " WHERE anonymous_id = 'anon-spool-v1'"),
                    harness.psql(self.db, "SELECT event_index, error_codes::text FROM rejected_events"
                                          " WHERE request_id = '0130856a00000005'"),
                    harness.psql(self.db, "SELECT events FROM sessions WHERE anonymous_id = 'anon-spool-v1'"))
        after = state()
        self.assertEqual(after, ([["anon-first-buyer"]], [["1", "{duplicate_conflict}", "anon-second-buyer"]],
                                 [["2", "2"]], [["2", "{name_format}"]], [["2"]]))
        self.assertEqual(metric(self.daemon, "milepost_events_duplicate_conflicts_total"), 1)
        # Replayed again: nothing grows.
        self.crash_and_replay_again(saved)
        self.assertEqual(state(), after)

    def test_second_daemon_refused(self):
        self.daemon = self.start()
        other = harness.Daemon(self.db, wait=None, spool_dir=self.spool)
        status = other.wait(20)
        other.kill()
        self.assertIsNotNone(status, "a second daemon on the same spool must not start")
        self.assertNotEqual(status, 0)
        self.assertIn("used by another milepost process", other.log())


if __name__ == "__main__":
    harness.main()
