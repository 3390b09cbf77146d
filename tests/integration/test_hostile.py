#!/usr/bin/env python3
"""Hostile input: a corpus of bad requests, each answered with its 4xx and
machine-readable code while the daemon keeps serving (a valid event is
accepted after each) and its memory stays bounded; the connection limits,
the request deadline against slow-loris clients, and the rate limits.

test_errors.py checks the status and code of each ordinary error (truncated
JSON, invalid UTF-8, \\u0000, corrupt gzip, wrong media type, ...) one by
one; here such requests are part of a corpus whose point is that none of
them hurts the daemon, and the cases it lacks (huge numbers, raw NUL, deep
nesting, a 10 MB body, a gzip bomb, header floods, slow loris, connection
and rate limits) are added. docs/operations.md ("Fault and abuse tests")
records the figures this prints."""

import json
import os
import socket
import time
import zlib

import harness
from admin_api import key_entry, new_api_key
from harness import BLOG_KEY, SHOP_KEY, make_event

READ = new_api_key("rk_hostile")

MAX_BODY = 2 * 1024 * 1024      # above the gzip bomb's compressed size
MAX_STRING = 4096
MAX_DEPTH = 32
PER_IP = 4                      # connections from one address
MAX_HEADER = 64 * 1024          # libmicrohttpd's memory per connection
REQUEST_TIMEOUT_S = 3
RSS_GROWTH_MAX_KB = 64 * 1024


def proc_status_kb(pid, field):
    """VmRSS, VmHWM, ... of a process, in kB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s in /proc/%d/status" % (field, pid))


def gzip_bomb(total=1 << 30):
    """total bytes of zeros as one gzip member (about 1 MB for 1 GB)."""
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [c.compress(block) for _ in range(total // len(block))]
    parts.append(c.flush())
    return b"".join(parts)


def gzip_members(count=10078, size=16 * 1024):
    """count gzip members of size spaces each, concatenated: one body that
    inflates to count * size bytes (165 MB in about 520 kB by default)."""
    member = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    one = member.compress(b" " * size) + member.flush()
    return one * count


def segment_context_bomb(keys, messages):
    """A Segment batch whose batch-level context has keys keys and whose
    messages each carry an empty context of their own: the body that took
    1.16 GB (45,000 keys, 200 messages) while each message got a merged
    copy of the batch context."""
    ctx = ",".join('"k%05d":0' % i for i in range(keys))
    msg = '{"type":"track","event":"page_view","anonymousId":"a-%d","context":{}}'
    return ('{"context":{%s},"batch":[%s]}' % (
        ctx, ",".join(msg % i for i in range(messages)))).encode()


def raw_exchange(port, data, timeout=10):
    """Send data on a new connection and read until the server closes it or
    stops sending; returns the bytes received (b"" when refused or reset)."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (ConnectionResetError, BrokenPipeError, socket.timeout):
            pass
    return out


def status_of(raw):
    """The status code of a raw HTTP answer, or None."""
    parts = raw.split(b" ", 2)
    if len(parts) >= 2 and parts[0].startswith(b"HTTP/1.") and parts[1].isdigit():
        return int(parts[1])
    return None


def nested(depth):
    return '{"name":"page_view","props":' + '{"a":' * depth + "1" + "}" * depth + "}"


class HostileCorpusTest(harness.DaemonTestCase):
    # Under AddressSanitizer freed memory waits in a quarantine (256 MB by
    # default) before it is reused, which RSS would count as growth: a small
    # one keeps the measure about the daemon (other binaries ignore it).
    daemon_config = {"max_body_bytes": MAX_BODY, "max_string_bytes": MAX_STRING,
                     "max_json_depth": MAX_DEPTH, "max_connections_per_ip": PER_IP,
                     "request_timeout_s": REQUEST_TIMEOUT_S, "connection_timeout_s": 60,
                     "max_header_bytes": MAX_HEADER,
                     "api_keys": [key_entry("read", "read", READ)],
                     "env": {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=8"}}

    def assertStillServing(self, after):
        ev = make_event()
        resp = self.post(ev)
        self.assertEqual(resp.status, 202, "valid event after %s: %r" % (after, resp))
        self.assertEqual(resp.body.get("accepted"), 1, "after %s: %r" % (after, resp))

    def assertEventRejected(self, resp, status, code):
        """resp answers status for a body whose one event is rejected with
        code (kept in rejected_events: Segment's answer does not say)."""
        self.assertEqual(resp.status, status, resp)
        rows = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual([r["error_codes"] for r in rows], [[code]], resp)

    def corpus(self):
        """(label, request keyword arguments, status, code): an error
        status with its code, or a 2xx whose one event is rejected with
        code."""
        ev = make_event()
        good = json.dumps(ev).encode()
        bomb = gzip_bomb()
        members = gzip_members()
        self.assertLess(max(len(bomb), len(members)), MAX_BODY)
        return [
            ("truncated JSON", {"payload": good[:-3]}, 400, "malformed_json"),
            ("batch of the wrong type", {"payload": {"batch": {"name": "x"}}}, 400, "invalid_batch"),
            ("body of the wrong type", {"payload": b"[1,2,3]"}, 400, "malformed_json"),
            ("huge real 1e400", {"payload": b'{"name":"page_view","props":{"n":1e400}}'},
             400, "malformed_json"),
            ("huge integer 2^70", {"payload": ('{"name":"page_view","props":{"n":%d}}' % 2 ** 70).encode()},
             400, "malformed_json"),
            ("invalid UTF-8", {"payload": b'{"name":"page_view","props":{"k":"\xc3\x28\xff"}}'},
             400, "malformed_json"),
            ("escaped NUL", {"payload": b'{"name":"page_view","props":{"k":"a\\u0000b"}}'},
             400, "malformed_json"),
            ("raw NUL in a string", {"payload": b'{"name":"page_view","props":{"k":"a\x00b"}}'},
             400, "malformed_json"),
            ("raw NUL after the body", {"payload": good + b"\x00"}, 400, "malformed_json"),
            ("nesting 10,000 deep", {"payload": nested(10000).encode()}, 400, "malformed_json"),
            ("nesting just over max_json_depth", {"payload": nested(MAX_DEPTH).encode()},
             400, "malformed_json"),
            ("string over max_string_bytes",
             {"payload": make_event(props={"k": "x" * (MAX_STRING + 1)})}, 413, "string_too_long"),
            ("key over max_string_bytes",
             {"payload": make_event(props={"k" * (MAX_STRING + 1): 1})}, 413, "string_too_long"),
            ("10 MB body", {"payload": b'{"pad":"' + b"x" * (10 << 20) + b'"}'}, 413, "payload_too_large"),
            ("10 MB body, chunked", {"payload": b'{"pad":"' + b"x" * (10 << 20) + b'"}', "chunked": True},
             413, "payload_too_large"),
            ("bad gzip", {"payload": b"\x1f\x8b\x08\x00garbage", "headers": {"Content-Encoding": "gzip"}},
             400, "malformed_gzip"),
            ("gzip bomb, 1 GB of zeros in %d kB" % (len(bomb) // 1024),
             {"payload": bomb, "headers": {"Content-Encoding": "gzip"}}, 413, "payload_too_large"),
            ("gzip of %d members, %d MB in %d kB" % (10078, 10078 * 16 // 1024, len(members) // 1024),
             {"payload": members, "headers": {"Content-Encoding": "gzip"}}, 413, "payload_too_large"),
            ("Segment batch, context of 60,000 keys, 200 messages",
             {"payload": segment_context_bomb(60000, 200), "path": "/v1/batch"},
             413, "too_many_values"),
            # Instants whose offset carries them out of what PostgreSQL
            # stores: before, year 0 failed the whole request (500) and the
            # writer's batch with it.
            ("sent_at in year 0 after its offset",
             {"payload": make_event(sent_at="0001-01-01T00:00:00+23:59")}, 202, "invalid_timestamp"),
            ("ts in year 10000 after its offset",
             {"payload": make_event(ts="9999-12-31T23:59:59-00:01")}, 202, "invalid_timestamp"),
            ("Segment sentAt of the batch in year 0",
             {"payload": {"sentAt": "0001-01-01T00:00:00+00:01", "batch": [
                 {"type": "track", "event": "page_view", "anonymousId": "a-1",
                  "timestamp": "2026-01-01T00:00:00Z"}]}, "path": "/v1/batch"},
             200, "invalid_timestamp"),
            ("wrong content type", {"payload": good, "headers": {"Content-Type": "application/xml"}},
             415, "unsupported_media_type"),
            ("segment route, nesting 10,000 deep",
             {"payload": nested(10000).encode(), "path": "/v1/track"}, 400, "malformed_json"),
        ]

    def test_corpus_answers_and_memory(self):
        pid = self.daemon.proc.pid
        self.assertStillServing("start")
        corpus = self.corpus()
        rss_before = proc_status_kb(pid, "VmRSS")
        hwm_before = proc_status_kb(pid, "VmHWM")
        rounds = 3
        rss = []
        for _ in range(rounds):
            for label, target, status, code in self.get_corpus():
                with self.subTest(case=label):
                    self.assertGetRefused(label, target, status, code)
            for label, kw, status, code in corpus:
                with self.subTest(case=label):
                    payload = kw.pop("payload")
                    resp = self.post(payload, **kw)
                    kw["payload"] = payload
                    if status < 400:
                        self.assertEventRejected(resp, status, code)
                    else:
                        self.assertError(resp, status, code)
                    self.assertStillServing(label)
            rss.append(proc_status_kb(pid, "VmRSS"))
        rss_after = proc_status_kb(pid, "VmRSS")
        hwm_after = proc_status_kb(pid, "VmHWM")
        harness._diag("corpus of %d POST and %d GET requests x %d rounds: VmRSS %d -> %d kB "
                      "(after each round: %s), VmHWM %d -> %d kB" % (len(corpus), len(self.get_corpus()), rounds, rss_before, rss_after,
                                             ", ".join(map(str, rss)), hwm_before, hwm_after))
        self.assertLess(rss_after - rss_before, RSS_GROWTH_MAX_KB)
        self.assertLess(hwm_after - hwm_before, RSS_GROWTH_MAX_KB)
        # No leak per request: the last round costs far less than the first.
        self.assertLess(rss[-1] - rss[-2], max(8 * 1024, (rss[0] - rss_before) // 2),
                        "RSS after each round: %s kB" % (rss,))

    def get_corpus(self):
        """Bad UTF-8/NUL parameters and paths: (label, raw target, status, code)."""
        funnel = "/api/v1/funnel?site=shop&steps=page_view,signup&"
        return [
            ("filter=channel=%ff%fe", funnel + "filter=channel=%ff%fe", 400, "invalid_parameter"),
            ("filter with a NUL", funnel + "filter=channel=direct%00x", 400, "invalid_parameter"),
            ("overlong UTF-8 in steps", "/api/v1/funnel?site=shop&steps=page_view,%c0%af", 400,
             "invalid_parameter"),
            ("parameter name not UTF-8", funnel + "%ff=1", 400, "invalid_parameter"),
            ("site with a NUL", "/api/v1/funnel?site=shop%00blog", 400, "invalid_parameter"),
            ("/js/%ff%fe", "/js/%ff%fe", 404, "not_found"),
            ("/js/milepost.js%00.html", "/js/milepost.js%00.html", 404, "not_found"),
            ("no endpoint, path not UTF-8", "/nowhere/%ff%c3", 404, "not_found"),
        ]

    def assertGetRefused(self, label, target, status, code):
        """GET target answers the error status and code in valid JSON and
        UTF-8 (no raw byte echoed, none replaced), and the daemon serves on."""
        resp = self.daemon.get(target, headers={"Authorization": "Bearer " + READ})
        json.loads(resp.raw.decode("utf-8"))
        self.assertError(resp, status, code)
        self.assertNotIn("\ufffd", resp.raw.decode("utf-8"))
        self.assertStillServing(label)

    def test_bad_utf8_and_nul_parameters(self):
        """Bad UTF-8/NUL parameters: each answer is the error shape in valid
        JSON and UTF-8, the daemon keeps serving, and every log line written
        meanwhile is valid UTF-8 and JSON."""
        mark = len(open(self.daemon.log_path, "rb").read())
        for label, target, status, code in self.get_corpus():
            with self.subTest(case=label):
                self.assertGetRefused(label, target, status, code)
        time.sleep(0.2)
        with open(self.daemon.log_path, "rb") as f:
            written = f.read()[mark:]
        for line in written.splitlines():
            with self.subTest(log=line[:200]):
                json.loads(line.decode("utf-8"))

    def test_header_flood(self):
        """libmicrohttpd answers oversized headers itself: 431 and a close,
        with its own HTML body (docs/operations.md, Limits)."""
        port = self.daemon.port
        cases = {
            "a 100 KB header": b"X-Big: " + b"a" * 100000 + b"\r\n",
            "5,000 headers": b"".join(b"X-H%d: v\r\n" % i for i in range(5000)),
            "a 100 KB URL": b"",
        }
        for label, extra in cases.items():
            with self.subTest(case=label):
                target = b"/v1/events?" + b"k" * 100000 if not extra else b"/v1/events"
                raw = raw_exchange(port, b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + extra +
                                   b"Content-Length: 2\r\n\r\n{}")
                harness._diag("%s: libmicrohttpd answered %s" % (label, status_of(raw)))
                self.assertIn(status_of(raw), (413, 414, 431), raw[:200])
                self.assertStillServing(label)

    def test_header_size_is_configured(self):
        """max_header_bytes (64 KiB here) decides: a 48 KB header, over
        libmicrohttpd's default of 32 KiB, passes; a 70 KB one does not."""
        ev = make_event()
        resp = self.post(ev, headers={"X-Padding": "p" * 48000})
        self.assertAccepted(resp, 1)
        raw = raw_exchange(self.daemon.port, b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Padding: " +
                           b"p" * 70000 + b"\r\nContent-Length: 2\r\n\r\n{}")
        self.assertEqual(status_of(raw), 431, raw[:200])

    def test_connections_per_ip(self):
        """One connection more than max_connections_per_ip is closed at once;
        the others stay open, and closing them frees their places."""
        port = self.daemon.port
        time.sleep(0.5)  # earlier connections are cleaned up
        held = []
        try:
            for _ in range(PER_IP + 1):
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                try:
                    s.sendall(b"POST /v1/events HTTP/1.1\r\n")  # a request begun
                except OSError:
                    pass
                held.append(s)
            time.sleep(0.3)
            refused = 0
            for s in held:
                s.settimeout(0.2)
                try:
                    refused += s.recv(100) == b""
                except socket.timeout:
                    pass
                except OSError:
                    refused += 1
            self.assertEqual(refused, 1, "of %d connections from one address" % (PER_IP + 1))
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)
        self.assertStillServing("the per-address limit")

    def trickle(self, head, limit_s):
        """Send head, then a space every 0.2 s until the server closes the
        connection or limit_s pass; returns (seconds until closed or None,
        bytes received)."""
        start = time.monotonic()
        got = b""
        with socket.create_connection(("127.0.0.1", self.daemon.port), timeout=30) as s:
            s.sendall(head)
            s.settimeout(0.2)
            while time.monotonic() - start < limit_s:
                try:
                    s.sendall(b" ")
                    chunk = s.recv(100)
                except socket.timeout:
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    chunk = b""
                if not chunk:
                    return time.monotonic() - start, got
                got += chunk
        return None, got

    def connections_cut(self):
        for line in self.daemon.get("/metrics").raw.decode().splitlines():
            if line.startswith("milepost_http_connections_cut_total "):
                return int(line.split()[1])
        self.fail("no milepost_http_connections_cut_total in /metrics")

    def test_slow_loris_is_cut(self):
        """A client trickling a header byte every 0.2 s is never idle, so
        connection_timeout_s (60 here) does not stop it; request_timeout_s does."""
        before = self.connections_cut()
        cut_after, got = self.trickle(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ",
                                      REQUEST_TIMEOUT_S + 10)
        harness._diag("slow loris cut after %.2f s (request_timeout_s %d)"
                      % (cut_after or -1, REQUEST_TIMEOUT_S))
        self.assertIsNotNone(cut_after, "slow loris still connected after %d s" % (REQUEST_TIMEOUT_S + 10))
        self.assertEqual(got, b"")
        self.assertGreaterEqual(cut_after, REQUEST_TIMEOUT_S - 0.5)
        self.assertLess(cut_after, REQUEST_TIMEOUT_S + 3)
        self.assertStillServing("slow loris")
        self.assertEqual(self.connections_cut(), before + 1, "milepost_http_connections_cut_total counts it")

    def test_slow_body_is_cut(self):
        """The bound covers the body too: headers at once, then a trickle."""
        cut_after, got = self.trickle(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Milepost-Key: " + SHOP_KEY.encode() + b"\r\nContent-Length: 1000\r\n\r\n{",
            REQUEST_TIMEOUT_S + 10)
        self.assertIsNotNone(cut_after, "slow body still sending after %d s" % (REQUEST_TIMEOUT_S + 10))
        self.assertEqual(got, b"")
        self.assertLess(cut_after, REQUEST_TIMEOUT_S + 3)
        self.assertStillServing("slow body")

    def test_keep_alive_requests_each_get_the_full_time(self):
        """The deadline restarts after each answer: a keep-alive connection
        making requests for longer than request_timeout_s in all is not cut."""
        conn = harness.http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=10)
        try:
            start = time.monotonic()
            while time.monotonic() - start < REQUEST_TIMEOUT_S + 1.5:
                resp = harness.http_request("POST", self.daemon.url("/v1/events"), body=make_event(),
                                            headers={"X-Milepost-Key": SHOP_KEY}, conn=conn)
                self.assertEqual(resp.status, 202, "%r" % (resp,))
                time.sleep(0.5)
        finally:
            conn.close()


class RateLimitTest(harness.DaemonTestCase):
    """Per address (requests; the address from client_ip_header, so each test
    uses its own) and per site (events)."""

    daemon_config = {"rate_limit_per_ip": 1, "rate_limit_burst_per_ip": 3,
                     "rate_limit_per_key": 2, "rate_limit_burst_per_key": 10,
                     "client_ip_header": "X-Forwarded-For"}

    def post_from(self, ip, payload, key=SHOP_KEY, path="/v1/events"):
        return self.daemon.post_events(payload, key=key, path=path, headers={"X-Forwarded-For": ip})

    def assertRateLimited(self, resp):
        self.assertError(resp, 429, "rate_limited")
        retry = resp.headers.get("retry-after", "")
        self.assertTrue(retry.isdigit() and int(retry) >= 1, "Retry-After of %r" % (resp,))
        return int(retry)

    def test_per_address_requests(self):
        ip = "198.51.100.7"
        for i in range(3):
            self.assertEqual(self.post_from(ip, make_event()).status, 202, "request %d" % i)
        retry = self.assertRateLimited(self.post_from(ip, make_event()))
        self.assertEqual(retry, 1)
        # Bad requests count too: a flood of garbage is limited as well.
        self.assertRateLimited(self.post_from(ip, b"not json"))
        # Another address has its own bucket.
        self.assertEqual(self.post_from("198.51.100.8", make_event()).status, 202)
        time.sleep(retry + 0.1)
        self.assertEqual(self.post_from(ip, make_event()).status, 202)

    def test_ipv6_by_64(self):
        """An IPv6 client is keyed by its /64: rotating addresses inside it
        does not give it new buckets. Bodies are garbage (400, no events),
        so the sites' buckets are untouched."""
        for ip in ("2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:1:2:3"):
            self.assertError(self.post_from(ip, b"not json"), 400, "malformed_json")
        self.assertRateLimited(self.post_from("2001:db8:1:2:abcd::9", b"not json"))
        self.assertError(self.post_from("2001:db8:1:3::1", b"not json"), 400, "malformed_json")

    def test_ipv4_mapped_is_ipv4(self):
        for ip in ("198.51.100.20", "::ffff:198.51.100.20", "198.51.100.20"):
            self.assertError(self.post_from(ip, b"not json"), 400, "malformed_json")
        self.assertRateLimited(self.post_from("::ffff:198.51.100.20", b"not json"))

    def test_per_address_on_segment_routes(self):
        ip = "198.51.100.9"
        msg = {"type": "track", "event": "page_view", "anonymousId": "a-1"}
        for path in ("/v1/track", "/v1/t", "/v1/batch"):
            body = {"batch": [msg]} if path == "/v1/batch" else msg
            self.assertEqual(self.post_from(ip, body, path=path).status, 200, path)
        self.assertRateLimited(self.post_from(ip, msg, path="/v1/p"))

    def test_per_site_events(self):
        """The site's bucket counts events, however batched; another site is
        not affected. A new address per request keeps the address limit out."""
        ips = ("203.0.113.%d" % i for i in range(1, 200))
        self.assertAccepted(self.post_from(next(ips), {"batch": [make_event() for _ in range(8)]},
                                           key=BLOG_KEY), 8)
        self.assertAccepted(self.post_from(next(ips), {"batch": [make_event(), make_event()]},
                                           key=BLOG_KEY), 2)
        retry = self.assertRateLimited(self.post_from(next(ips), make_event(), key=BLOG_KEY))
        self.assertEqual(retry, 1)  # 2 events per second: one is 0.5 s away
        # A batch needing 4 tokens waits 2 s.
        self.assertEqual(self.assertRateLimited(self.post_from(
            next(ips), {"batch": [make_event() for _ in range(4)]}, key=BLOG_KEY)), 2)
        self.assertEqual(self.post_from(next(ips), make_event(), key=SHOP_KEY).status, 202)
        time.sleep(1.1)
        self.assertAccepted(self.post_from(next(ips), make_event(), key=BLOG_KEY), 1)


class SegmentContextTest(harness.DaemonTestCase):
    """Under max_json_values, the batch context of the 1.16 GB body is
    shared by its messages, not copied into each: the batch is accepted
    and memory stays bounded. Its own daemon, so that the high-water mark
    is this request's."""
    daemon_config = {"env": HostileCorpusTest.daemon_config["env"]}

    def test_batch_context_is_not_copied_per_message(self):
        pid = self.daemon.proc.pid
        body = segment_context_bomb(40000, 200)
        self.assertLess(len(body), 512 * 1024)
        self.assertStillServing()
        hwm_before = proc_status_kb(pid, "VmHWM")
        started = time.monotonic()
        resp = self.post(body, path="/v1/batch")
        took = time.monotonic() - started
        hwm_after = proc_status_kb(pid, "VmHWM")
        harness._diag("Segment batch of %d kB, 40,000-key context, 200 messages: %d in %.2f s, "
                      "VmHWM %d -> %d kB" % (len(body) // 1024, resp.status, took,
                                             hwm_before, hwm_after))
        self.assertEqual(resp.status, 200, resp)
        self.assertLess(hwm_after - hwm_before, RSS_GROWTH_MAX_KB)
        self.assertStillServing()

    def assertStillServing(self):
        resp = self.post(make_event())
        self.assertEqual(resp.status, 202, resp)


if __name__ == "__main__":
    harness.main()
