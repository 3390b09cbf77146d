#!/usr/bin/env python3
"""milepost.js in a real browser (Debian's chromium, headless, through
tests/browser/drive.mjs): pages on a loopback origin the site allows load
the snippet from the collector (another origin), and every check reads the
rows in PostgreSQL. Covered: the automatic page view with the landing UTM,
calls queued by the stub before the script loads (sent in order), SPA
navigation (pushState, replaceState, popstate) and turning it off, track
with properties, identify linking ids, consent (no localStorage before it,
ids after it, cleared when withdrawn, reset), Global Privacy Control, the
collector stopped and restarted (events kept, retried, each stored once),
and a page of an origin the site does not allow (nothing stored)."""

import hashlib
import hmac
import html
import json
import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from harness import SHOP_KEY, psql  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PLAN = harness.read_example_plan()
PII_KEY = "browser-test-pii-key-0123456789ab"
PRODUCT = {"product_id": "P-1001", "price": 89.9, "currency": "EUR"}
FLUSH_TIMEOUT_S = 20


class Pages:
    """An HTTP server for test pages on 127.0.0.1 (an allowed origin) that
    is also reachable as localhost (an origin no site allows)."""

    def __init__(self):
        self.pages = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                body = pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                kind = "text/html; charset=utf-8"
                if isinstance(body, tuple):
                    kind, body = body
                data = body.encode() if isinstance(body, str) else body
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def origin(self, host="127.0.0.1"):
        return "http://%s:%d" % (host, self.port)

    def add_file(self, path, data, kind):
        """Serves data (bytes) at path with Content-Type kind."""
        self.pages[path] = (kind, data)

    def add_html(self, body):
        """A page of its own; returns its path."""
        path = "/h%s" % secrets.token_hex(4)
        self.pages[path] = body
        return path

    def add(self, collector, before="", attrs=""):
        """A page loading the snippet; before: script run first (the stub
        and queued calls). Returns its path."""
        path = "/p%s" % secrets.token_hex(4)
        self.pages[path] = (
            "<!doctype html><html><head><title>Test page</title>"
            "<script>%s</script>"
            '<script async src="%s/js/milepost.js" data-key="%s"%s></script>'
            "</head><body>test</body></html>" % (before, collector, html.escape(SHOP_KEY), attrs))
        return path


STUB = ("window.milepost = window.milepost || function () "
        "{ (milepost.q = milepost.q || []).push(arguments) };")
CONSENT = STUB + "milepost('consent', {analytics: true, marketing: true});"


class Browser:
    """tests/browser/drive.mjs, one command at a time."""

    def __init__(self):
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "drive.mjs")], cwd=HERE,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def do(self, op, **kw):
        kw["op"] = op
        self.proc.stdin.write(json.dumps(kw) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("the browser driver exited (status %s)" % self.proc.wait())
        answer = json.loads(line)
        if not answer["ok"]:
            raise AssertionError("browser: %s" % answer["error"])
        return answer["value"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


IDENTITY_SECRET = "snippet-identity-secret-0123456789"


class BrowserCase(harness.TestCase):
    """Tests sharing a page server, a browser, a fresh database and a
    daemon (the example plan, consent_mode anonymous) whose shop site
    allows the page server's 127.0.0.1 origin."""

    @classmethod
    def setUpClass(cls):
        cls.pages = Pages()
        cls.db = harness.fresh_database()
        # Identity verification optional: an identify without a hash links as before.
        sites = [dict(harness.SITES[0], allowed_origins=[cls.pages.origin()],
                      identity_verification="optional", identity_secret=IDENTITY_SECRET),
                 harness.SITES[1]]
        cls.daemon = harness.Daemon(cls.db, sites=sites, plan=harness.write_plan(PLAN),
                                    pii_hash_key=PII_KEY, consent_mode="anonymous")
        cls.daemons_to_watch = (cls.daemon,)
        cls.browser = Browser()

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.pages.server.shutdown()
        if cls.daemon.alive() and cls.daemon.stop() != 0:
            raise AssertionError("milepost exited badly on SIGTERM")


class SnippetBrowserCase(BrowserCase):

    # -- helpers

    def open(self, before="", attrs="", query="", host="127.0.0.1", init=None):
        """Opens a new page (new browser context: empty localStorage);
        returns the token its URLs carry."""
        token = secrets.token_hex(6)
        path = self.pages.add(self.daemon.url("").rstrip("/"), before, attrs)
        self.browser.do("open", init=init)
        self.browser.do("goto", url="%s%s?t=%s%s" % (self.pages.origin(host), path, token, query))
        return token

    def rows(self, token):
        """Stored events whose URL carries token, in time order."""
        cols = ("event_id", "name", "anonymous_id", "user_id", "url", "referrer", "props", "consent",
                "utm_source", "utm_medium", "utm_campaign", "channel", "consented")
        out = []
        for r in psql(self.db, "SELECT event_id, name, anonymous_id, user_id, url, referrer,"
                               " props::text, consent::text, utm_source, utm_medium, utm_campaign,"
                               " channel, consented FROM events WHERE url LIKE :'p' ORDER BY ts, name",
                      p="%t=" + token + "%"):
            row = dict(zip(cols, r))
            row["props"] = json.loads(row["props"]) if row["props"] else None
            row["consent"] = json.loads(row["consent"]) if row["consent"] else None
            out.append(row)
        return out

    def wait_rows(self, token, n):
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while True:
            rows = self.rows(token)
            if len(rows) >= n or time.monotonic() > deadline:
                self.assertEqual(len(rows), n, "rows: %r" % (rows,))
                return rows
            time.sleep(0.2)

    def js(self, expr):
        return self.browser.do("eval", js=expr)

    def stored_state(self):
        return self.js("JSON.parse(localStorage.getItem('milepost'))")

    # -- tests

    def test_page_view_with_landing_utm_and_track(self):
        t = self.open(CONSENT, query="&utm_source=news&utm_medium=email&utm_campaign=spring")
        self.js("milepost('track', 'product_viewed', %s)" % json.dumps(PRODUCT))
        rows = self.wait_rows(t, 2)
        self.assertEqual([r["name"] for r in rows], ["page_viewed", "product_viewed"])
        for r in rows:
            self.assertEqual((r["utm_source"], r["utm_medium"], r["utm_campaign"], r["channel"]),
                             ("news", "email", "spring", "Email"))
            self.assertEqual(r["consent"], {"analytics": True, "marketing": True})
        self.assertEqual(rows[1]["props"], PRODUCT)
        self.assertEqual(rows[0]["anonymous_id"], self.stored_state()["aid"])

    def test_calls_queued_before_load_are_sent_in_order(self):
        user = "user-" + secrets.token_hex(4)
        t = self.open(CONSENT + "milepost('track', 'cart_added', {product_id: 'P-1', quantity: 1,"
                      " currency: 'EUR'}); milepost('identify', %s);" % json.dumps(user))
        rows = self.wait_rows(t, 3)
        self.assertEqual([r["name"] for r in rows], ["cart_added", "identify", "page_viewed"])
        aid = self.stored_state()["aid"]
        self.assertEqual([r["anonymous_id"] for r in rows], [aid] * 3)
        self.assertEqual([r["user_id"] for r in rows], [None, user, user])
        persons = psql(self.db, "SELECT count(DISTINCT person_id) FROM identities WHERE site_id = 'shop'"
                                " AND ((kind = 'anonymous' AND id = :'a') OR (kind = 'user' AND id = :'u'))",
                       a=aid, u=user)
        self.assertEqual(persons, [["1"]], "the device and the user are one person")

    def test_identify_sends_the_user_hash(self):
        user = "user-" + secrets.token_hex(4)
        h = hmac.new(IDENTITY_SECRET.encode(), user.encode(), hashlib.sha256).hexdigest()
        t = self.open(CONSENT + "milepost('identify', %s, {userHash: %s});"
                      % (json.dumps(user), json.dumps(h)))
        rows = self.wait_rows(t, 2)
        self.assertEqual([r["user_id"] for r in rows if r["name"] == "identify"], [user])
        self.assertEqual(self.stored_state()["uh"], h)
        self.assertEqual(psql(self.db, "SELECT verified FROM identities WHERE site_id = 'shop'"
                                       " AND kind = 'user' AND id = :'u'", u=user), [["t"]],
                         "the hash reached the collector and verified the link")
        self.js("milepost('reset')")
        self.assertNotIn("uh", self.stored_state())

    def test_spa_navigation(self):
        t = self.open(CONSENT)
        self.js("history.pushState({}, '', '/spa/two?t=%s')" % t)
        self.js("history.replaceState({}, '', '/spa/three?t=%s')" % t)
        self.js("history.back()")
        rows = self.wait_rows(t, 4)
        paths = [r["url"].split("?")[0].split(str(self.pages.port))[1] for r in rows]
        self.assertEqual(paths[1:3], ["/spa/two", "/spa/three"])
        self.assertTrue(paths[0].startswith("/p") and paths[3] == paths[0], paths)
        self.assertEqual(rows[1]["referrer"], rows[0]["url"], "a navigation's referrer is the page before")

    def test_automatic_page_views_can_be_turned_off(self):
        t = self.open(CONSENT, attrs=' data-auto-page="false"')
        self.js("history.pushState({}, '', '/spa/x?t=%s')" % t)
        self.js("milepost('track', 'cart_viewed')")
        rows = self.wait_rows(t, 1)
        self.assertEqual(rows[0]["name"], "cart_viewed")
        self.js("milepost('page')")
        self.assertEqual([r["name"] for r in self.wait_rows(t, 2)], ["cart_viewed", "page_viewed"])

    def test_consent_decides_what_is_kept(self):
        t = self.open()
        self.assertEqual(self.js("localStorage.length"), 0, "nothing stored before consent")
        first = self.wait_rows(t, 1)[0]
        self.assertEqual((first["name"], first["anonymous_id"], first["consented"]),
                         ("page_viewed", None, "f"), "before consent the server anonymises")
        self.js("milepost('consent', {analytics: true, marketing: false})")
        state = self.stored_state()
        self.assertRegex(state["aid"], r"^[0-9a-f-]{36}$")
        self.js("milepost('track', 'cart_viewed')")
        second = self.wait_rows(t, 2)[1]
        self.assertEqual((second["anonymous_id"], second["consent"]),
                         (state["aid"], {"analytics": True, "marketing": False}))
        self.assertEqual(self.js("document.cookie"), "", "no cookies")
        self.js("milepost('reset')")
        self.assertNotEqual(self.stored_state()["aid"], state["aid"], "reset: a new anonymous id")
        self.js("milepost('consent', {analytics: false})")
        self.assertEqual(self.js("localStorage.length"), 0, "withdrawn: nothing kept")

    def test_global_privacy_control_turns_marketing_off(self):
        t = self.open(CONSENT, init="Object.defineProperty(Navigator.prototype,"
                                    " 'globalPrivacyControl', {get: () => true})")
        row = self.wait_rows(t, 1)[0]
        self.assertEqual(row["consent"], {"analytics": True, "marketing": False})

    def test_events_survive_a_collector_restart(self):
        t = self.open(CONSENT)
        self.wait_rows(t, 1)
        self.daemon.stop()
        try:
            for i in range(3):
                self.js("milepost('track', 'cart_viewed', {})")
            deadline = time.monotonic() + FLUSH_TIMEOUT_S
            while len((self.stored_state() or {}).get("q", [])) < 3:
                self.assertLess(time.monotonic(), deadline, "events not kept for a retry")
                time.sleep(0.2)
        finally:
            self.daemon._start(self.daemon.port)
            self.daemon.wait_for("/readyz")
        rows = self.wait_rows(t, 4)
        self.assertEqual([r["name"] for r in rows], ["page_viewed"] + ["cart_viewed"] * 3)
        self.assertEqual(len({r["event_id"] for r in rows}), 4, "each stored once")
        deadline = time.monotonic() + FLUSH_TIMEOUT_S
        while self.stored_state()["q"]:
            self.assertLess(time.monotonic(), deadline, "queue not emptied after delivery")
            time.sleep(0.2)

    def test_a_page_of_another_origin_is_refused(self):
        t = self.open(CONSENT, host="localhost")
        self.js("milepost('track', 'cart_viewed')")
        time.sleep(3)
        self.assertEqual(self.rows(t), [])
        self.assertGreater(len(self.stored_state()["q"]), 0,
                           "unreadable (no CORS headers), so kept for a retry")
        sent = [u for u in self.browser.do("requests") if "/v1/events" in u]
        self.assertTrue(sent, "the snippet did try to send")


if __name__ == "__main__":
    harness.main()
