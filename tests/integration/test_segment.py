#!/usr/bin/env python3
"""The Segment-compatible HTTP API: every call type and its short path, the
write key as Basic user name or in the body, messageIds that are not UUIDs
mapped to one event id (a resent message is stored once), page calls stored
as the plan's page event, identify and alias linking ids, batches with
batch-level context and sentAt, group calls kept aside with a code, the
answer Segment's clients expect, and the settings document of Segment's
browser library."""

import base64
import hashlib
import json
import secrets
import uuid
from datetime import timedelta

import harness
from harness import SHOP_KEY, make_event, psql, psql_value, rfc3339, utcnow

PLAN = harness.read_example_plan()
PII_KEY = "segment-test-pii-key-0123456789ab"
CONSENT = {"consent": {"categoryPreferences": {"analytics": True}}}


def derived_event_id(message_id):
    """The event id a non-UUID messageId maps to (common/uuid7.h), computed
    independently: keyed BLAKE2b-128, then UUID version 8 and RFC variant."""
    b = bytearray(hashlib.blake2b(message_id.encode(), digest_size=16,
                                  key=b"milepost event id v1").digest())
    b[6] = 0x80 | (b[6] & 0x0F)
    b[8] = 0x80 | (b[8] & 0x3F)
    return str(uuid.UUID(bytes=bytes(b)))


def basic(key):
    return "Basic " + base64.b64encode((key + ":").encode()).decode()


def mid():
    """A messageId as analytics.js makes them: not a UUID."""
    return "ajs-next-%s" % secrets.token_hex(12)


class SegmentCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "pii_hash_key": PII_KEY}
        super().setUpClass()

    def segment(self, path, body, auth=SHOP_KEY, headers=None, **kw):
        hdrs = {"Authorization": basic(auth)} if auth is not None else {}
        hdrs.update(headers or {})
        return self.daemon.post_events(body, key=None, path=path, headers=hdrs, **kw)

    def assertSuccess(self, resp):
        self.assertEqual((resp.status, resp.body), (200, {"success": True}), "%r" % (resp,))

    def row(self, event_id):
        rows = harness.event_rows(self.db, [event_id], site_id="shop")
        self.assertIn(event_id, rows, "event %s not stored" % event_id)
        return rows[event_id]

    def person(self, kind, id_):
        return psql_value(self.db, "SELECT person_id FROM identities WHERE site_id = 'shop'"
                                   " AND kind = :'k' AND id = :'i'", k=kind, i=id_)

    def test_track_long_and_short_path(self):
        for path in ("/v1/track", "/v1/t"):
            with self.subTest(path=path):
                m = mid()
                ts = utcnow() - timedelta(minutes=5)
                anon = "anon-%s" % secrets.token_hex(4)
                msg = {"type": "track", "event": "cart_added", "messageId": m, "anonymousId": anon,
                       "userId": "user-%s" % secrets.token_hex(4),
                       "properties": {"product_id": "P-1", "quantity": 2, "currency": "EUR"},
                       "timestamp": rfc3339(ts), "sentAt": rfc3339(ts),
                       "integrations": {"All": True},
                       "context": dict(CONSENT, ip="203.0.113.9", userAgent="curl/8",
                                       page={"url": "https://shop.example/p?utm_source=news",
                                             "referrer": "https://www.google.com/"})}
                self.assertSuccess(self.segment(path, msg))
                r = self.row(derived_event_id(m))
                self.assertEqual((r["name"], r["anonymous_id"], r["user_id"], r["kind"]),
                                 ("cart_added", anon, msg["userId"], "milestone"))
                self.assertEqual(r["props"], msg["properties"])
                self.assertEqual(r["url"], "https://shop.example/p?utm_source=news")
                self.assertEqual(psql_value(self.db, "SELECT utm_source FROM events WHERE"
                                                     " event_id = :'e'", e=derived_event_id(m)), "news")
                # context.ip is never stored anywhere.
                self.assertEqual(harness.tables_containing(self.db, "203.0.113.9"), {})

    def test_resent_message_is_one_event(self):
        m = mid()
        msg = {"event": "cart_viewed", "messageId": m, "anonymousId": "a-resend",
               "context": CONSENT}
        for _ in range(3):
            self.assertSuccess(self.segment("/v1/track", msg))
        self.assertEqual(harness.event_id_counts(self.db, [derived_event_id(m)]),
                         {derived_event_id(m): 1})

    def test_uuid_message_id_is_the_event_id(self):
        m = harness.new_id()
        self.assertSuccess(self.segment("/v1/track", {"event": "cart_viewed", "messageId": m,
                                                      "anonymousId": "a-uuid", "context": CONSENT}))
        self.assertEqual(self.row(m)["name"], "cart_viewed")

    def test_write_key_in_body_and_page_calls(self):
        for path, call in (("/v1/page", "page"), ("/v1/p", "page"), ("/v1/screen", "screen"),
                           ("/v1/s", "screen")):
            with self.subTest(path=path):
                m = mid()
                msg = {"type": call, "name": "Product", "messageId": m, "writeKey": SHOP_KEY,
                       "anonymousId": "a-page",
                       "properties": {"url": "https://shop.example/p/1", "path": "/p/1",
                                      "title": "Shoe", "referrer": "https://blog.example/x",
                                      "search": "", "page_type": "product"},
                       "context": CONSENT}
                self.assertSuccess(self.segment(path, msg, auth=None,
                                                headers={"Content-Type": "text/plain"}))
                r = self.row(derived_event_id(m))
                # The call's name is kept as the page's name property (the plan has it).
                self.assertEqual((r["name"], r["kind"], r["url"], r["referrer"], r["props"]),
                                 ("page_viewed", "page", "https://shop.example/p/1",
                                  "https://blog.example/x",
                                  {"title": "Shoe", "page_type": "product", "name": "Product"}))

    def test_any_content_type(self):
        """Segment's API reads the body as JSON whatever Content-Type says:
        some server libraries send gzipped JSON as a form."""
        for ctype, gz in (("application/x-www-form-urlencoded", True), ("application/octet-stream", False)):
            with self.subTest(content_type=ctype, gzip=gz):
                m = mid()
                msg = {"type": "track", "event": "cart_viewed", "messageId": m, "anonymousId": "a-form",
                       "context": CONSENT}
                self.assertSuccess(self.segment("/v1/track", msg, headers={"Content-Type": ctype}, gzip=gz))
                self.assertEqual(self.row(derived_event_id(m))["name"], "cart_viewed")
        # The native endpoint keeps its 415.
        resp = self.daemon.post_events(make_event(), headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(harness.error_code(resp), "unsupported_media_type")

    def test_identify_and_alias_link_ids(self):
        for path in ("/v1/identify", "/v1/i", "/v1/alias", "/v1/a"):
            with self.subTest(path=path):
                anon = "anon-%s" % secrets.token_hex(4)
                user = "user-%s" % secrets.token_hex(4)
                self.assertSuccess(self.segment("/v1/track", {
                    "event": "cart_viewed", "messageId": mid(), "anonymousId": anon,
                    "context": CONSENT}))
                if "alias" in path or path == "/v1/a":
                    msg = {"type": "alias", "previousId": anon, "userId": user}
                else:
                    msg = {"type": "identify", "anonymousId": anon, "userId": user,
                           "traits": {"email": "someone@example.com"}}
                msg.update(messageId=mid(), context=CONSENT)
                self.assertSuccess(self.segment(path, msg))
                self.assertIsNotNone(self.person("user", user))
                self.assertEqual(self.person("anonymous", anon), self.person("user", user))
                self.assertEqual(harness.tables_containing(self.db, "someone@example.com"), {},
                                 "traits are not stored")

    def test_batch_and_import(self):
        for path in ("/v1/batch", "/v1/b", "/v1/import"):
            with self.subTest(path=path):
                anon = "anon-%s" % secrets.token_hex(4)
                sent = utcnow()
                msgs = [{"type": "page", "messageId": mid(), "anonymousId": anon,
                         "properties": {"page_type": "home"}},
                        {"type": "track", "event": "product_viewed", "messageId": mid(),
                         "anonymousId": anon,
                         "properties": {"product_id": "P-9", "price": 10.5, "currency": "EUR"},
                         "context": {"page": {"url": "https://shop.example/own"}}},
                        {"type": "identify", "messageId": mid(), "anonymousId": anon,
                         "userId": "u-" + anon}]
                body = {"batch": msgs, "sentAt": rfc3339(sent), "writeKey": SHOP_KEY,
                        "context": dict(CONSENT, page={"url": "https://shop.example/batch"})}
                self.assertSuccess(self.segment(path, body, auth=None))
                ids = [derived_event_id(m["messageId"]) for m in msgs]
                rows = harness.event_rows(self.db, ids, site_id="shop")
                self.assertEqual([rows[i]["name"] for i in ids],
                                 ["page_viewed", "product_viewed", "identify"])
                # Batch-level context applies; a message's own keys win.
                self.assertEqual([rows[i]["url"] for i in ids[:2]],
                                 ["https://shop.example/batch", "https://shop.example/own"])
                self.assertEqual(self.person("anonymous", anon), self.person("user", "u-" + anon))

    def test_group_and_invalid_messages_are_kept_aside(self):
        good = mid()
        msgs = [{"type": "group", "groupId": "acme", "userId": "u1", "messageId": mid()},
                {"type": "track", "messageId": mid(), "anonymousId": "a-bad", "context": CONSENT},
                {"type": "merge", "messageId": mid()},
                {"type": "track", "event": "cart_viewed", "messageId": good, "anonymousId": "a-ok",
                 "context": CONSENT}]
        resp = self.segment("/v1/batch", {"batch": msgs})
        self.assertSuccess(resp)
        rejected = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual([(r["event_index"], r["error_codes"]) for r in rejected],
                         [(0, ["unsupported_call"]), (1, ["missing_field"]), (2, ["wrong_type"])])
        self.assertEqual(rejected[0]["errors"][0]["path"], "$.type")
        self.assertEqual(rejected[1]["errors"][0]["path"], "$.name")
        self.assertEqual(self.row(derived_event_id(good))["name"], "cart_viewed")

    def test_errors(self):
        ok = {"event": "cart_viewed", "messageId": mid(), "anonymousId": "a-err"}
        self.assertError(self.segment("/v1/track", ok, auth=None), 401, "missing_write_key")
        self.assertError(self.segment("/v1/track", ok, auth="wk_nobody_at_all"), 401,
                         "invalid_write_key")
        self.assertError(self.segment("/v1/track", b"{not json"), 400, "malformed_json")
        self.assertError(self.segment("/v1/batch", {"batch": []}), 400, "invalid_batch")
        self.assertError(self.segment("/v1/batch", {"batch": {}}), 400, "invalid_batch")
        self.assertError(self.daemon.get("/v1/track"), 405, "method_not_allowed")

    def test_settings_for_analytics_next(self):
        resp = self.daemon.get("/v1/projects/%s/settings" % SHOP_KEY)
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        io = resp.body["integrations"]["Segment.io"]
        self.assertEqual((io["apiKey"], io["apiHost"], io["protocol"]),
                         (SHOP_KEY, "127.0.0.1:%d/v1" % self.daemon.port, "http"))
        self.assertEqual(resp.body["remotePlugins"], [])
        self.assertEqual(resp.body["metrics"]["sampleRate"], 0)
        self.assertEqual(list(resp.body["integrations"]), ["Segment.io"],
                         "no destination loads code from elsewhere")
        https = self.daemon.get("/v1/projects/%s/settings" % SHOP_KEY,
                                headers={"X-Forwarded-Proto": "https"})
        self.assertEqual(https.body["integrations"]["Segment.io"]["protocol"], "https")
        self.assertError(self.daemon.get("/v1/projects/wk_nobody_at_all/settings"), 401,
                         "invalid_write_key")
        self.assertError(self.daemon.get("/v1/projects/%s/other" % SHOP_KEY), 404, "not_found")


if __name__ == "__main__":
    harness.main()
