#!/usr/bin/env python3
"""Ingestion: what POST /v1/events accepts lands in `events`, field by field."""

import gzip
import json
import time
from datetime import datetime, timedelta, timezone

import harness
from harness import (BLOG_KEY, SHOP_KEY, ts_utc_sql, make_event, new_id, psql,
                     rfc3339, utc_text, utcnow)

COLUMNS = ["site_id", "event_id", "name", ts_utc_sql("ts"), "extract(epoch FROM received_at)",
           ts_utc_sql("sent_at"), "anonymous_id", "user_id", "session_id", "url", "referrer",
           "props::text", "consent::text"]


def fetch_events(db, ids):
    """{event_id: row dict} for the given ids, whatever the site."""
    rows = psql(db, "SELECT %s FROM events WHERE event_id = ANY (:'ids'::uuid[])" % ", ".join(COLUMNS),
                ids=harness.pg_array(ids))
    keys = ["site_id", "event_id", "name", "ts", "received_at", "sent_at", "anonymous_id",
            "user_id", "session_id", "url", "referrer", "props", "consent"]
    out = {}
    for r in rows:
        row = dict(zip(keys, r))
        row["received_at"] = float(row["received_at"])
        row["props"] = json.loads(row["props"])
        row["consent"] = json.loads(row["consent"])
        if row["event_id"] in out:
            raise AssertionError("event %s stored twice" % row["event_id"])
        out[row["event_id"]] = row
    return out


class IngestTest(harness.DaemonTestCase):

    def assertStored(self, events, site_id="shop"):
        """Every event is in `events` once, for that site, with its name and ids."""
        rows = fetch_events(self.db, [e["event_id"] for e in events])
        self.assertEqual(set(rows), {e["event_id"] for e in events}, "stored event ids")
        for e in events:
            row = rows[e["event_id"]]
            self.assertEqual((row["site_id"], row["name"], row["anonymous_id"]),
                             (site_id, e["name"], e.get("anonymous_id")), "row %r" % (row,))
        return rows

    def test_single_event_every_field(self):
        ts = utcnow() - timedelta(hours=1, microseconds=123)
        ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
        sent_at = ts + timedelta(seconds=2, milliseconds=250)
        ev = {
            "event_id": new_id(),
            "name": "checkout_completed",
            "ts": rfc3339(ts.astimezone(timezone(timedelta(hours=5, minutes=30)))),
            "sent_at": rfc3339(sent_at),
            "anonymous_id": "anon-Ünïcödé-1",
            "user_id": "user-42",
            "session_id": "sess-7",
            "url": "https://shop.example/checkout?step=3&x=%C3%A9",
            "referrer": "https://search.example/?q=milepost",
            "props": {"order_id": "A-1001", "total": 149.9, "items": 3, "currency": "EUR",
                      "coupon": None, "first_order": True,
                      "lines": [{"sku": "X1", "qty": 2}, {"sku": "Y2", "qty": 1}],
                      "nested": {"a": {"b": {"c": "deep"}}}, "text": "quote \" and \u00e9 \u2603"},
            "consent": {"analytics": True, "marketing": False},
            "version": 3,
        }
        before = time.time()
        resp = self.post(ev)
        after = time.time()
        self.assertAccepted(resp, 1)
        row = fetch_events(self.db, [ev["event_id"]]).get(ev["event_id"])
        self.assertIsNotNone(row, "event not stored")
        self.assertEqual(row["site_id"], "shop")
        self.assertEqual(row["name"], ev["name"])
        # The sender's clock is corrected with sent_at: the event happened
        # (sent_at - ts) before it arrived; sent_at itself is kept as sent.
        self.assertEqual(row["sent_at"], utc_text(sent_at))
        offset = sent_at - ts
        stored = datetime.strptime(row["ts"], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
        received = datetime.fromtimestamp(row["received_at"], timezone.utc)
        self.assertLess(abs((stored - (received - offset)).total_seconds()), 0.000002,
                        "ts = received_at - (sent_at - ts)")
        self.assertTrue(before - 0.001 <= row["received_at"] <= after + 0.001, "received while posting")
        for f in ("anonymous_id", "user_id", "session_id", "url", "referrer"):
            self.assertEqual(row[f], ev[f], f)
        self.assertEqual(row["props"], ev["props"])
        self.assertEqual(row["consent"], ev["consent"])
        self.assertTrue(before - 5 <= row["received_at"] <= after + 5,
                        "received_at %s not within [%s, %s]" % (row["received_at"], before, after))
        # No plan configured: the default one has no version, kinds or phases.
        verdict = harness.event_rows(self.db, [ev["event_id"]])[ev["event_id"]]
        self.assertEqual((verdict["plan_version"], verdict["kind"], verdict["phase"], verdict["consented"]),
                         (None, None, None, True))

    def test_answer_shape(self):
        """202 {"accepted", "rejected", "warnings", "results"}: one result per
        event in the order sent; without a plan file nothing is warned of."""
        events = [make_event(name="page_view"), make_event(name="Bad"), make_event(name="cart_viewed")]
        resp = self.post({"batch": events})
        self.assertAccepted(resp, 2, [1])
        self.assertEqual(set(resp.body), {"accepted", "rejected", "warnings", "results"})
        self.assertEqual(resp.body["results"], ["stored", "rejected", "stored"])
        self.assertEqual(resp.body["warnings"], [])

    def test_cookieless_id(self):
        """An event with neither anonymous_id nor user_id gets a cookieless id."""
        ev = make_event(anonymous_id=None)
        self.assertAccepted(self.post(ev), 1)
        row = harness.event_rows(self.db, [ev["event_id"]])[ev["event_id"]]
        self.assertRegex(row["anonymous_id"] or "", r"^v_[0-9a-f]{32}$")
        self.assertIsNone(row["user_id"])

    def test_event_id_generated_when_absent(self):
        ev = make_event(event_id=None, session_id="", url="", referrer="")
        before = time.time()
        self.assertAccepted(self.post(ev), 1)
        rows = psql(self.db, "SELECT event_id, extract(epoch FROM ts), extract(epoch FROM received_at),"
                             " session_id, url, referrer, user_id FROM events WHERE anonymous_id = :'a'",
                    a=ev["anonymous_id"])
        self.assertEqual(len(rows), 1, "rows for the event: %r" % (rows,))
        event_id, ts, received_at, session_id, url, referrer, user_id = rows[0]
        self.assertTrue(harness.is_uuid_v7(event_id), "generated event_id %s is not a UUIDv7" % event_id)
        # Time-ordered: the UUIDv7 timestamp (first 48 bits, ms) is the receive time.
        ms = int(event_id.replace("-", "")[:12], 16)
        self.assertLess(abs(ms / 1000.0 - float(received_at)), 5, "UUIDv7 time vs received_at")
        self.assertLess(abs(float(ts) - float(received_at)), 1, "ts defaults to the receive time")
        self.assertGreater(float(ts), before - 5)
        self.assertEqual([url, referrer, user_id], [None] * 3, "empty strings count as absent")
        # With no session_id given, the event starts a session named after it.
        self.assertEqual(session_id, event_id, "server-assigned session")

    def test_generated_event_ids_differ(self):
        events = [make_event(event_id=None) for _ in range(5)]
        self.assertAccepted(self.post({"batch": events}), 5)
        rows = psql(self.db, "SELECT event_id FROM events WHERE anonymous_id = ANY (:'a'::text[])",
                    a=harness.pg_array(e["anonymous_id"] for e in events))
        self.assertEqual(len(rows), 5)
        self.assertEqual(len({r[0] for r in rows}), 5, "generated ids are unique")

    def test_batch(self):
        events = [make_event(name=n, ts=rfc3339(utcnow() - timedelta(minutes=i)))
                  for i, n in enumerate(["page_view", "add_to_cart", "begin_checkout",
                                         "purchase_completed", "sign_up", "search2_done"])]
        resp = self.post({"batch": events})
        self.assertAccepted(resp, len(events))
        self.assertEqual(resp.body["results"], ["stored"] * len(events))
        self.assertStored(events)

    def test_write_key_in_query(self):
        ev = make_event()
        self.assertAccepted(self.daemon.post_events(ev, key=None, path="/v1/events?key=" + SHOP_KEY), 1)
        self.assertStored([ev], "shop")

    def test_header_key_wins_over_query(self):
        ev = make_event()
        self.assertAccepted(self.daemon.post_events(ev, key=BLOG_KEY, path="/v1/events?key=" + SHOP_KEY), 1)
        self.assertStored([ev], "blog")
        ev2 = make_event()
        self.assertAccepted(self.daemon.post_events(ev2, key=SHOP_KEY, path="/v1/events?key=wk_wrong_key"), 1)
        self.assertStored([ev2], "shop")

    def test_text_plain_body(self):
        ev = make_event()
        self.assertAccepted(self.post(ev, headers={"Content-Type": "text/plain;charset=UTF-8"}), 1)
        self.assertStored([ev])

    def test_sendbeacon_style(self):
        """text/plain, key in the query, no custom header: what sendBeacon sends."""
        events = [make_event(), make_event(name="link_clicked")]
        resp = self.daemon.post_events({"batch": events}, key=None, path="/v1/events?key=" + SHOP_KEY,
                                       headers={"Content-Type": "text/plain"})
        self.assertAccepted(resp, 2)
        self.assertStored(events)

    def test_json_with_charset(self):
        ev = make_event()
        self.assertAccepted(self.post(ev, headers={"Content-Type": "application/json; charset=utf-8"}), 1)
        self.assertStored([ev])

    def test_missing_content_type_is_json(self):
        ev = make_event()
        self.assertAccepted(self.post(ev, headers={"Content-Type": None}), 1)
        self.assertStored([ev])

    def test_media_type_case_insensitive(self):
        """Media types and content codings are case-insensitive in HTTP."""
        ev = make_event()
        resp = self.post(ev, gzip=True, headers={"Content-Type": "Application/JSON; Charset=UTF-8",
                                                 "Content-Encoding": "GZIP"})
        self.assertAccepted(resp, 1)
        self.assertStored([ev])

    def test_chunked_body(self):
        """Transfer-Encoding: chunked (no Content-Length), plain and gzip."""
        events = [make_event(props={"pad": "p" * 200, "i": i}) for i in range(10)]
        self.assertAccepted(self.post({"batch": events[:5]}, chunked=True), 5)
        self.assertAccepted(self.post({"batch": events[5:]}, chunked=True, gzip=True), 5)
        self.assertStored(events)

    def test_default_batch_limit(self):
        """max_batch_events defaults to 500."""
        events = [make_event(name="bulk_event", props={"i": i}) for i in range(501)]
        before = harness.count_rows(self.db)
        self.assertError(self.post({"batch": events}), 413, "too_many_events")
        self.assertEqual(harness.count_rows(self.db), before, "nothing stored")
        self.assertAccepted(self.post({"batch": events[:500]}), 500)
        self.assertEqual(len(harness.event_id_counts(self.db, [e["event_id"] for e in events[:500]])), 500)

    def test_gzip_single(self):
        ev = make_event(props={"k": "v" * 100})
        self.assertAccepted(self.post(ev, gzip=True), 1)
        self.assertStored([ev])

    def test_gzip_batch(self):
        events = [make_event(props={"i": i}) for i in range(20)]
        self.assertAccepted(self.post({"batch": events}, gzip=True), 20)
        rows = self.assertStored(events)
        self.assertEqual([rows[e["event_id"]]["props"] for e in events], [{"i": i} for i in range(20)])

    def test_identity_encoding(self):
        ev = make_event()
        self.assertAccepted(self.post(ev, headers={"Content-Encoding": "identity"}), 1)
        self.assertStored([ev])

    def test_gzip_bomb(self):
        ev = make_event()
        body = json.dumps(ev).encode()
        body = body[:-1] + b" " * (10 * 1024 * 1024) + b"}"
        compressed = gzip.compress(body, 9)
        self.assertLess(len(compressed), 512 * 1024, "the compressed body itself is small")
        before = harness.count_rows(self.db)
        resp = self.post(compressed, headers={"Content-Encoding": "gzip"})
        self.assertError(resp, 413, "payload_too_large")
        self.assertEqual(harness.count_rows(self.db), before, "nothing stored")
        self.assertEqual(harness.event_id_counts(self.db, [ev["event_id"]]), {})

    def test_visible_in_sql_when_202_arrives(self):
        session = harness.PsqlSession(self.db)
        try:
            for i in range(30):
                events = [make_event() for _ in range(1 + i % 3)]
                payload = events[0] if len(events) == 1 else {"batch": events}
                resp = self.post(payload)
                # No sleep, no retry: the 202 promises the commit has happened.
                rows = session.query("SELECT event_id FROM events WHERE event_id IN (%s)"
                                     % ",".join("'%s'" % e["event_id"] for e in events))
                self.assertAccepted(resp, len(events))
                self.assertEqual({r[0] for r in rows}, {e["event_id"] for e in events},
                                 "round %d: rows visible right after the 202" % i)
        finally:
            session.close()

    def test_sites_are_kept_apart(self):
        shop = [make_event(name="shop_event") for _ in range(3)]
        blog = [make_event(name="blog_event") for _ in range(2)]
        self.assertAccepted(self.post({"batch": shop}, key=SHOP_KEY), 3)
        self.assertAccepted(self.post({"batch": blog}, key=BLOG_KEY), 2)
        self.assertStored(shop, "shop")
        self.assertStored(blog, "blog")
        counts = psql(self.db, "SELECT site_id, name, count(*) FROM events"
                               " WHERE name IN ('shop_event', 'blog_event') GROUP BY 1, 2 ORDER BY 1")
        self.assertEqual(counts, [["blog", "blog_event", "2"], ["shop", "shop_event", "3"]])


if __name__ == "__main__":
    harness.main()
