#!/usr/bin/env python3
"""Request-level errors: each status and code of the docs' table, in the one
error shape, and nothing stored."""

import gzip
import json

import harness
from harness import SHOP_KEY, make_event

MAX_BODY = 4096
MAX_EVENTS = 5


class RequestErrorTest(harness.DaemonTestCase):
    daemon_config = {"max_body_bytes": MAX_BODY, "max_batch_events": MAX_EVENTS}

    def setUp(self):
        super().setUp()
        self.before = harness.count_rows(self.db)

    def assertRejectedRequest(self, resp, status, code, event_ids=()):
        """The error answer, and nothing at all was stored."""
        self.assertError(resp, status, code)
        self.assertEqual(harness.count_rows(self.db), self.before, "rows stored despite %d %s" % (status, code))
        if event_ids:
            self.assertEqual(harness.event_id_counts(self.db, event_ids), {})

    # -- 400

    def test_malformed_json_not_json(self):
        self.assertRejectedRequest(self.post(b"this is not json"), 400, "malformed_json")

    def test_malformed_json_empty_body(self):
        self.assertRejectedRequest(self.post(b""), 400, "malformed_json")

    def test_malformed_json_truncated(self):
        ev = make_event()
        body = json.dumps(ev).encode()
        self.assertRejectedRequest(self.post(body[:-7]), 400, "malformed_json", [ev["event_id"]])

    def test_malformed_json_top_level_array(self):
        ev = make_event()
        resp = self.post([ev])
        self.assertRejectedRequest(resp, 400, "malformed_json", [ev["event_id"]])
        # Says what is wrong: an array, not a nesting depth.
        message = resp.body["error"]["message"]
        self.assertIn("not an array", message)
        self.assertNotIn("levels", message)

    def test_malformed_json_nul_in_a_string(self):
        resp = self.post(b'{"name": "cart\\u0000added"}')
        self.assertRejectedRequest(resp, 400, "malformed_json")
        message = resp.body["error"]["message"]
        self.assertIn("\\u0000", message)
        self.assertNotIn("JSON_ALLOW_NUL", message, "jansson's flag is no word for a user")

    def test_malformed_json_top_level_scalars(self):
        for body in (b'"page_view"', b"42", b"null", b"true"):
            with self.subTest(body=body):
                self.assertRejectedRequest(self.post(body), 400, "malformed_json")

    def test_malformed_json_trailing_garbage(self):
        ev = make_event()
        self.assertRejectedRequest(self.post(json.dumps(ev).encode() + b" {}"), 400,
                                   "malformed_json", [ev["event_id"]])

    def test_malformed_json_duplicate_keys(self):
        ev = make_event()
        body = json.dumps(ev)[:-1] + ', "name": "other_name"}'
        self.assertRejectedRequest(self.post(body.encode()), 400, "malformed_json", [ev["event_id"]])

    def test_malformed_json_nul_in_string(self):
        ev = make_event(props={"k": "a\u0000b"})
        body = json.dumps(ev)
        self.assertIn("\\u0000", body)
        self.assertRejectedRequest(self.post(body.encode()), 400, "malformed_json", [ev["event_id"]])

    def test_malformed_json_invalid_utf8(self):
        ev = make_event(props={"k": "PLACEHOLDER"})
        body = json.dumps(ev).encode().replace(b"PLACEHOLDER", b"caf\xe9 \xff")
        self.assertRejectedRequest(self.post(body), 400, "malformed_json", [ev["event_id"]])

    def test_malformed_json_nested_too_deep(self):
        deep = 1
        for _ in range(40):  # > 32 levels in all
            deep = {"a": deep}
        ev = make_event(props=deep)
        self.assertRejectedRequest(self.post(ev), 400, "malformed_json", [ev["event_id"]])

    def test_invalid_batch(self):
        for batch in ([], {}, "events", None, 3):
            with self.subTest(batch=batch):
                self.assertRejectedRequest(self.post({"batch": batch}), 400, "invalid_batch")

    def test_malformed_gzip_plain_body(self):
        ev = make_event()
        resp = self.post(ev, headers={"Content-Encoding": "gzip"})
        self.assertRejectedRequest(resp, 400, "malformed_gzip", [ev["event_id"]])

    def test_malformed_gzip_truncated_stream(self):
        ev = make_event(props={"pad": "x" * 500})
        compressed = gzip.compress(json.dumps(ev).encode())
        resp = self.post(compressed[: len(compressed) // 2], headers={"Content-Encoding": "gzip"})
        self.assertRejectedRequest(resp, 400, "malformed_gzip", [ev["event_id"]])

    def test_malformed_gzip_corrupt_crc(self):
        ev = make_event()
        compressed = bytearray(gzip.compress(json.dumps(ev).encode()))
        compressed[-8] ^= 0xFF  # CRC32 of the trailer
        resp = self.post(bytes(compressed), headers={"Content-Encoding": "gzip"})
        self.assertRejectedRequest(resp, 400, "malformed_gzip", [ev["event_id"]])

    # -- 401

    def test_missing_write_key(self):
        ev = make_event()
        self.assertRejectedRequest(self.post(ev, key=None), 401, "missing_write_key", [ev["event_id"]])

    def test_empty_write_key(self):
        ev = make_event()
        resp = self.daemon.post_events(ev, key=None, path="/v1/events?key=")
        code = harness.error_code(resp)
        self.assertIn(code, ("missing_write_key", "invalid_write_key"), "%r" % (resp,))
        self.assertRejectedRequest(resp, 401, code, [ev["event_id"]])

    def test_invalid_write_key_header(self):
        ev = make_event()
        self.assertRejectedRequest(self.post(ev, key="wk_no_such_site"), 401, "invalid_write_key",
                                   [ev["event_id"]])

    def test_invalid_write_key_query(self):
        ev = make_event()
        resp = self.daemon.post_events(ev, key=None, path="/v1/events?key=wk_no_such_site")
        self.assertRejectedRequest(resp, 401, "invalid_write_key", [ev["event_id"]])

    def test_write_key_is_case_sensitive(self):
        ev = make_event()
        self.assertRejectedRequest(self.post(ev, key=SHOP_KEY.upper()), 401, "invalid_write_key",
                                   [ev["event_id"]])

    # -- 404 / 405

    def test_not_found(self):
        ev = make_event()
        for method, path in (("POST", "/v1/event"), ("POST", "/v2/events"), ("GET", "/nope"),
                             ("POST", "/v1/events/extra"), ("GET", "/index.html"),
                             ("GET", "/dashboard/nope.js")):
            with self.subTest(method=method, path=path):
                resp = harness.http_request(method, self.daemon.url(path),
                                            body=ev if method == "POST" else None,
                                            headers={"X-Milepost-Key": SHOP_KEY})
                self.assertRejectedRequest(resp, 404, "not_found", [ev["event_id"]])

    def test_method_not_allowed(self):
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            with self.subTest(method=method):
                body = make_event() if method in ("PUT", "PATCH") else None
                resp = harness.http_request(method, self.daemon.url("/v1/events"), body=body,
                                            headers={"X-Milepost-Key": SHOP_KEY})
                self.assertRejectedRequest(resp, 405, "method_not_allowed")
                allow = [m.strip().upper() for m in resp.headers.get("allow", "").split(",")]
                self.assertIn("POST", allow, "Allow header of %r" % (resp,))
                self.assertNotIn(method, allow)

    # -- 413

    def test_payload_too_large(self):
        ev = make_event(props={"pad": "x" * (MAX_BODY + 100)})
        body = json.dumps(ev).encode()
        self.assertGreater(len(body), MAX_BODY)
        self.assertRejectedRequest(self.post(body), 413, "payload_too_large", [ev["event_id"]])

    def test_payload_too_large_chunked(self):
        """Without Content-Length the limit applies as the body arrives."""
        ev = make_event(props={"pad": "x" * (MAX_BODY * 3)})
        resp = self.post(ev, chunked=True)
        self.assertRejectedRequest(resp, 413, "payload_too_large", [ev["event_id"]])

    def test_payload_too_large_after_gzip(self):
        ev = make_event(props={"pad": "x" * (MAX_BODY * 4)})
        compressed = gzip.compress(json.dumps(ev).encode())
        self.assertLess(len(compressed), MAX_BODY)
        resp = self.post(compressed, headers={"Content-Encoding": "gzip"})
        self.assertRejectedRequest(resp, 413, "payload_too_large", [ev["event_id"]])

    def test_body_just_under_limit_is_accepted(self):
        """The limit is the configured one: a body close to it passes."""
        ev = make_event(props={"pad": ""})
        ev["props"]["pad"] = "x" * (MAX_BODY - 64 - len(json.dumps(ev)))
        body = json.dumps(ev).encode()
        self.assertTrue(MAX_BODY - 100 < len(body) <= MAX_BODY, len(body))
        self.assertAccepted(self.post(body), 1)
        self.assertEqual(harness.event_id_counts(self.db, [ev["event_id"]]), {ev["event_id"]: 1})

    def test_too_many_events(self):
        events = [make_event() for _ in range(MAX_EVENTS + 1)]
        self.assertRejectedRequest(self.post({"batch": events}), 413, "too_many_events",
                                   [e["event_id"] for e in events])

    def test_batch_at_the_limit_is_accepted(self):
        events = [make_event() for _ in range(MAX_EVENTS)]
        self.assertAccepted(self.post({"batch": events}), MAX_EVENTS)
        self.assertEqual(len(harness.event_id_counts(self.db, [e["event_id"] for e in events])), MAX_EVENTS)

    # -- 415

    def test_unsupported_media_type(self):
        ev = make_event()
        for ctype in ("application/xml", "multipart/form-data; boundary=x",
                      "application/x-www-form-urlencoded", "text/html"):
            with self.subTest(content_type=ctype):
                resp = self.post(ev, headers={"Content-Type": ctype})
                self.assertRejectedRequest(resp, 415, "unsupported_media_type", [ev["event_id"]])

    def test_unsupported_encoding(self):
        ev = make_event()
        for enc in ("br", "deflate", "compress", "zstd"):
            with self.subTest(encoding=enc):
                resp = self.post(ev, headers={"Content-Encoding": enc})
                self.assertRejectedRequest(resp, 415, "unsupported_encoding", [ev["event_id"]])


if __name__ == "__main__":
    harness.main()
