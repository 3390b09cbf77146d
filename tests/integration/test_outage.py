#!/usr/bin/env python3
"""PostgreSQL goes away and comes back while the daemon runs: 503 with
Retry-After (never a hang), readyz follows, and ingestion resumes by itself."""

import socket
import threading
import time

import harness
from admin_api import api_call, key_entry
from harness import PrivateCluster, make_event

READ = "outage-read-key-0123456789abcdef"
# Words of libpq's error texts ("connection to server on socket ... failed",
# "could not connect", "Connection refused") that a caller must not see.
LIBPQ_WORDS = ("socket", "server", "connect", "refused", "port", "host")

RETRY_AFTER_S = 3
RECOVERY_S = 20   # PostgreSQL back until the daemon writes again (~15 s, some slack)


class OutageTest(harness.TestCase):

    def setUp(self):
        super().setUp()
        self.cluster = PrivateCluster()
        self.cluster.start()
        self.db = self.cluster.create_database()
        self.acked = set()      # ids answered 202: must be stored
        self.refused = set()    # ids answered 503: must not be stored

    def tearDown(self):
        try:
            super().tearDown()
        finally:
            self.cluster.destroy()

    def post_batch(self, n=3):
        """Post n new events; returns the answer after noting their fate."""
        events = [make_event() for _ in range(n)]
        ids = {e["event_id"] for e in events}
        started = time.monotonic()
        try:
            resp = self.daemon.post_events({"batch": events}, timeout=15)
        except socket.timeout:
            self.fail("no answer within 15 s (database %s)" % ("up" if self.cluster.running else "down"))
        elapsed = time.monotonic() - started
        if resp.status == 202:
            self.assertAccepted(resp, n)
            self.acked |= ids
        elif resp.status == 503:
            self.assertError(resp, 503, "database_unavailable")
            self.assertNoLibpqText(resp)
            self.assertEqual(resp.headers.get("retry-after"), str(RETRY_AFTER_S),
                             "Retry-After is retry_after_s: %r" % (resp,))
            self.refused |= ids
        else:
            self.fail("unexpected answer after %.1f s: %r" % (elapsed, resp))
        return resp

    def assertNoLibpqText(self, resp):
        message = resp.body["error"]["message"].lower()
        for word in LIBPQ_WORDS:
            self.assertNotIn(word, message, "libpq's text reached the caller: %r" % (resp,))

    def readyz_unavailable(self):
        resp = self.daemon.get("/readyz")
        return resp if resp.status == 503 else None

    def test_outage_and_recovery(self):
        self.daemon = self.start_daemon(self.db, retry_after_s=RETRY_AFTER_S,
                                        api_keys=[key_entry("read", "read", READ)])
        for cycle in (1, 2):
            with self.subTest(cycle=cycle):
                self.assertEqual(self.post_batch().status, 202, "cycle %d: ingest before the outage" % cycle)

                self.cluster.stop("fast")
                for _ in range(3):
                    self.assertEqual(self.post_batch().status, 503, "cycle %d: ingest while down" % cycle)
                resp = api_call(self.daemon, "GET", "/api/v1/rejected", key=READ, params={"site": "shop"})
                self.assertError(resp, 503, "database_unavailable")
                self.assertNoLibpqText(resp)
                resp = self.poll("readyz 503 while PostgreSQL is down", self.readyz_unavailable, 15)
                self.assertError(resp, 503, "not_ready")
                self.assertEqual(self.daemon.get("/healthz").status, 200)
                self.daemon.assert_alive()

                self.cluster.start()
                self.poll("ingest after PostgreSQL is back", lambda: self.post_batch().status == 202, RECOVERY_S)
                self.poll("readyz 200 after PostgreSQL is back",
                          lambda: self.daemon.get("/readyz").status == 200, 15)
                for _ in range(3):
                    self.assertEqual(self.post_batch().status, 202, "cycle %d: ingest after recovery" % cycle)

        stored = harness.stored_event_ids(self.db, "shop")
        self.assertEqual(self.acked - stored, set(), "events answered 202 but not stored")
        self.assertEqual(self.refused & stored, set(), "events answered 503 but stored")
        self.assertEqual(stored - self.acked - self.refused, set(), "events stored that were never sent")
        self.assertGreaterEqual(len(self.refused), 12)
        self.assertEqual(self.daemon.stop(), 0)

    def test_writes_resume_for_a_fresh_writer_connection(self):
        """After the outage every writer thread must have reconnected: a burst
        of concurrent requests (spread over the writers) all succeed."""
        self.daemon = self.start_daemon(self.db, retry_after_s=RETRY_AFTER_S, writer_threads=4)
        self.assertEqual(self.post_batch().status, 202)
        self.cluster.stop("fast")
        self.assertEqual(self.post_batch().status, 503)
        self.cluster.start()
        self.poll("ingest after PostgreSQL is back", lambda: self.post_batch().status == 202, RECOVERY_S)
        answers = []

        def client():
            for _ in range(10):
                answers.append(self.post_batch(2).status)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(answers, [202] * 80, "every request after the recovery is stored")
        stored = harness.stored_event_ids(self.db, "shop")
        self.assertEqual(self.acked - stored, set(), "events answered 202 but not stored")
        self.assertEqual(self.daemon.stop(), 0)


if __name__ == "__main__":
    harness.main()
