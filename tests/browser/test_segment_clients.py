#!/usr/bin/env python3
"""Segment's own libraries against the collector. The Node library
(@segment/analytics-node) sends track, page, identify, alias and a large
batch: the rows in PostgreSQL have the right names, people, properties and
times. The browser library (@segment/analytics-next), loaded in Debian's
chromium with cdnURL at the collector, takes its settings from the collector
and sends a page and a track there, and asks no other host for anything."""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import SHOP_KEY, psql, psql_value  # noqa: E402
from test_snippet import BrowserCase  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PLAN = harness.read_example_plan()
CONTEXT = {"consent": {"categoryPreferences": {"analytics": True}}}


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


class SegmentNodeCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN),
                             "pii_hash_key": "segment-node-pii-key-0123456789ab"}
        super().setUpClass()

    def send(self, calls, flush_at=15):
        spec = {"host": self.daemon.url("").rstrip("/"), "writeKey": SHOP_KEY,
                "flushAt": flush_at, "calls": calls}
        out = subprocess.run(["node", os.path.join(HERE, "segment_node.mjs")], cwd=HERE,
                             input=json.dumps(spec), capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)["errors"], [], "the library reported errors")

    def rows(self, where, **vars):
        cols = ("name", "anonymous_id", "user_id", "person_id", "props", "ts", "kind")
        out = []
        for r in psql(self.db, "SELECT name, anonymous_id, user_id, person_id, props::text, %s, kind"
                               " FROM events WHERE site_id = 'shop' AND (%s) ORDER BY ts, name"
                               % (harness.ts_utc_sql("ts"), where), **vars):
            row = dict(zip(cols, r))
            row["props"] = json.loads(row["props"]) if row["props"] else None
            out.append(row)
        return out

    def person(self, kind, id_):
        return psql_value(self.db, "SELECT person_id FROM identities WHERE site_id = 'shop'"
                                   " AND kind = :'k' AND id = :'i'", k=kind, i=id_)

    def test_track_page_identify_alias(self):
        anon = "anon-" + secrets.token_hex(5)
        user = "user-" + secrets.token_hex(5)
        t0 = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
        product = {"product_id": "P-1001", "price": 89.9, "currency": "EUR"}
        self.send([
            {"method": "page", "params": {"anonymousId": anon, "name": "Home", "timestamp": iso(t0),
                                          "properties": {"url": "https://shop.example/?utm_source=news",
                                                         "page_type": "home"}, "context": CONTEXT}},
            {"method": "track", "params": {"anonymousId": anon, "event": "product_viewed",
                                           "timestamp": iso(t0 + timedelta(minutes=1)),
                                           "properties": product, "context": CONTEXT}},
            {"method": "identify", "params": {"anonymousId": anon, "userId": user,
                                              "timestamp": iso(t0 + timedelta(minutes=2)),
                                              "traits": {"plan": "pro"}, "context": CONTEXT}},
            {"method": "track", "params": {"userId": user, "event": "cart_added",
                                           "timestamp": iso(t0 + timedelta(minutes=3)),
                                           "properties": {"product_id": "P-1001", "quantity": 1,
                                                          "currency": "EUR"}, "context": CONTEXT}},
        ])
        rows = self.rows("anonymous_id = :'a' OR user_id = :'u'", a=anon, u=user)
        self.assertEqual([r["name"] for r in rows], ["page_viewed", "product_viewed", "identify", "cart_added"])
        # Times are the library's timestamps, corrected for the sender's
        # clock with sentAt as Segment does: shifted by the time in transit.
        for i, r in enumerate(rows):
            got = datetime.fromisoformat(r["ts"]).replace(tzinfo=timezone.utc)
            shift = (got - (t0 + timedelta(minutes=i))).total_seconds()
            self.assertTrue(0 <= shift < 5, "event %d is %.3f s off" % (i, shift))
        self.assertEqual(rows[1]["props"], product)
        self.assertEqual(rows[0]["props"].get("page_type"), "home")
        self.assertNotIn("url", rows[0]["props"], "the page's address is the native url")
        person = self.person("user", user)
        self.assertIsNotNone(person)
        self.assertEqual(self.person("anonymous", anon), person)
        self.assertEqual({r["person_id"] for r in rows}, {person}, "one person across the calls")
        # alias links another device's id to the same user.
        other = "anon-" + secrets.token_hex(5)
        self.send([
            {"method": "track", "params": {"anonymousId": other, "event": "cart_viewed",
                                           "context": CONTEXT}},
            {"method": "alias", "params": {"previousId": other, "userId": user, "context": CONTEXT}},
        ])
        self.assertEqual(self.person("anonymous", other), person)

    def test_large_batch(self):
        run = secrets.token_hex(5)
        n = 400
        self.send([{"method": "track", "params": {
            "anonymousId": "anon-%s-%d" % (run, i % 37), "event": "cart_viewed",
            "properties": {"cart_id": "%s-%d" % (run, i)}, "context": CONTEXT}} for i in range(n)],
            flush_at=n)
        got = psql(self.db, "SELECT props->>'cart_id' FROM events WHERE site_id = 'shop'"
                            " AND props->>'cart_id' LIKE :'p'", p=run + "-%")
        self.assertEqual(sorted(r[0] for r in got), sorted("%s-%d" % (run, i) for i in range(n)))
        self.assertEqual(int(psql_value(self.db, "SELECT count(DISTINCT request_id) FROM rejected_events"
                                                 " WHERE payload::text LIKE :'p'", p="%" + run + "%")), 0)


class SegmentBrowserCase(BrowserCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        umd = os.path.join(HERE, "node_modules", "@segment", "analytics-next", "dist", "umd", "index.js")
        with open(umd, "rb") as f:
            cls.pages.add_file("/ajs.js", f.read(), "text/javascript")

    def test_analytics_next_sends_only_to_the_collector(self):
        token = secrets.token_hex(6)
        collector = self.daemon.url("").rstrip("/")
        path = self.pages.add_html(
            "<!doctype html><html><head><title>ajs</title><script src=\"/ajs.js\"></script>"
            "<script>window.done = AnalyticsNext.AnalyticsBrowser.load({writeKey: %s, cdnURL: %s})"
            ".then(([a]) => Promise.all([a.page(), a.track('cart_viewed', {cart_id: %s})]))"
            ".then(() => 'sent', (e) => 'failed: ' + e);</script></head><body></body></html>"
            % (json.dumps(SHOP_KEY), json.dumps(collector), json.dumps(token)))
        self.browser.do("open")
        self.browser.do("goto", url="%s%s?t=%s" % (self.pages.origin(), path, token))
        self.assertEqual(self.browser.do("eval", js="window.done"), "sent")
        deadline = time.monotonic() + 20
        while True:
            rows = psql(self.db, "SELECT name, props::text FROM events WHERE site_id = 'shop'"
                                 " AND url LIKE :'p' ORDER BY name", p="%t=" + token + "%")
            if len(rows) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual([r[0] for r in rows], ["cart_viewed", "page_viewed"])
        self.assertEqual(json.loads(rows[0][1]), {"cart_id": token})
        hosts = {urllib.parse.urlsplit(u).netloc for u in self.browser.do("requests")}
        self.assertEqual(hosts, {"127.0.0.1:%d" % self.pages.port, "127.0.0.1:%d" % self.daemon.port},
                         "requests went elsewhere: %r" % (self.browser.do("requests"),))


if __name__ == "__main__":
    harness.main()
