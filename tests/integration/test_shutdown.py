#!/usr/bin/env python3
"""SIGTERM: the daemon exits 0 within shutdown_timeout_s and loses no event it
acknowledged."""

import http.client
import json
import signal
import socket
import threading
import time

import harness
from harness import fresh_database, make_event, psql

CLIENTS = 16
SHUTDOWN_TIMEOUT_S = 10
EXIT_SLACK_S = 5    # beyond shutdown_timeout_s: process teardown on a loaded machine


class ShutdownTest(harness.TestCase):

    def assertExitsInTime(self, daemon, shutdown_timeout):
        started = time.monotonic()
        code = daemon.wait(shutdown_timeout + EXIT_SLACK_S)
        if code is None:
            daemon.kill()
            self.fail("milepost still running %d s after SIGTERM" % (shutdown_timeout + EXIT_SLACK_S))
        daemon.exit_code = code
        self.assertEqual(code, 0, "exit status after SIGTERM")
        return time.monotonic() - started

    def test_sigterm_under_load(self):
        db = fresh_database()
        d = self.start_daemon(db, shutdown_timeout_s=SHUTDOWN_TIMEOUT_S, http_threads=4)
        lock = threading.Lock()
        sent, acked = set(), set()
        problems = []           # answers or errors that break the contract
        late = {"503": 0, "no answer": 0}
        terminated = threading.Event()
        stop = threading.Event()

        def client(n):
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
            i = 0
            while not stop.is_set():
                i += 1
                events = [make_event(props={"client": n, "i": i}) for _ in range(1 if i % 3 else 5)]
                ids = {e["event_id"] for e in events}
                with lock:
                    sent.update(ids)
                signalled = terminated.is_set()
                try:
                    resp = harness.http_request("POST", d.url("/v1/events"), body={"batch": events},
                                                headers={"X-Milepost-Key": harness.SHOP_KEY}, conn=conn)
                except (OSError, http.client.HTTPException) as e:
                    conn.close()  # http.client reconnects on the next request
                    if terminated.is_set():
                        late["no answer"] += 1
                        time.sleep(0.05)
                    else:
                        problems.append("client %d: %r before SIGTERM" % (n, e))
                        return
                    continue
                if resp.status == 202 and isinstance(resp.body, dict) and resp.body.get("accepted") == len(events):
                    with lock:
                        acked.update(ids)
                elif resp.status == 503 and terminated.is_set() and harness.error_code(resp) in (
                        "shutting_down", "database_unavailable"):
                    late["503"] += 1
                    conn.close()
                    time.sleep(0.05)
                else:
                    problems.append("client %d (%s SIGTERM): %r" % (n, "after" if signalled else "before", resp))
                    return
            conn.close()

        threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        time.sleep(1)
        while len(acked) < 200 and time.monotonic() < deadline and not problems:
            time.sleep(0.1)
        self.assertEqual(problems, [])
        self.assertGreaterEqual(len(acked), 200, "load before SIGTERM")
        acked_before = len(acked)

        terminated.set()
        d.signal(signal.SIGTERM)
        try:
            elapsed = self.assertExitsInTime(d, SHUTDOWN_TIMEOUT_S)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(problems, [])

        stored = psql(db, "SELECT event_id, count(*) FROM events GROUP BY 1")
        duplicates = [r for r in stored if r[1] != "1"]
        stored = {r[0] for r in stored}
        print("# %d sent, %d acked (%d before SIGTERM), %d stored; after SIGTERM: %s; exit after %.1f s"
              % (len(sent), len(acked), acked_before, len(stored), late, elapsed))
        self.assertEqual(duplicates, [], "events stored twice")
        self.assertEqual(sorted(acked - stored), [], "events answered 202 but not stored")
        self.assertEqual(sorted(stored - sent), [], "events stored that were never sent")

    def test_sigterm_with_idle_keepalive_connection(self):
        """An idle keep-alive connection does not hold the exit back until
        connection_timeout_s."""
        db = fresh_database()
        d = self.start_daemon(db, shutdown_timeout_s=3, connection_timeout_s=600)
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        try:
            ev = make_event()
            self.assertAccepted(harness.http_request("POST", d.url("/v1/events"), body=ev,
                                                     headers={"X-Milepost-Key": harness.SHOP_KEY}, conn=conn), 1)
            d.signal(signal.SIGTERM)
            self.assertExitsInTime(d, 3)
        finally:
            conn.close()
        self.assertEqual(harness.event_id_counts(db, [ev["event_id"]]), {ev["event_id"]: 1})

    def test_request_in_progress_when_signalled(self):
        """A request whose body is still arriving when SIGTERM comes either
        completes (and is then stored) or is refused with 503; the daemon still
        exits 0 in time."""
        db = fresh_database()
        d = self.start_daemon(db, shutdown_timeout_s=SHUTDOWN_TIMEOUT_S)
        ev = make_event()
        body = json.dumps(ev).encode()
        sock = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        try:
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"X-Milepost-Key: " + harness.SHOP_KEY.encode() + b"\r\n"
                         b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body[:10])
            time.sleep(0.5)
            d.signal(signal.SIGTERM)
            time.sleep(0.5)
            sock.sendall(body[10:])
            raw = http.client.HTTPResponse(sock)
            raw.begin()
            headers = {k.lower(): v for k, v in raw.getheaders()}
            resp = harness.Response(raw.status, headers, raw.read())
        finally:
            sock.close()
        self.assertExitsInTime(d, SHUTDOWN_TIMEOUT_S)
        stored = harness.event_id_counts(db, [ev["event_id"]])
        if resp.status == 202:
            self.assertAccepted(resp, 1)
            self.assertEqual(stored, {ev["event_id"]: 1}, "acknowledged, so stored")
        else:
            self.assertError(resp, 503, "shutting_down")


if __name__ == "__main__":
    harness.main()
