#!/usr/bin/env python3
"""GET /js/milepost.js: the snippet fits its size budget (1.5 KB gzipped, as
served), is valid JavaScript-looking text that gunzips to the identity
answer, carries an ETag and Cache-Control, answers 304 to a current copy,
honours Accept-Encoding (q=0 included), answers HEAD, and other names 404."""

import gzip

import harness

BUDGET = 1536  # bytes, gzipped: the "1.5 KB"


class SnippetFileCase(harness.DaemonTestCase):
    def get(self, headers=None, path="/js/milepost.js", method="GET"):
        return harness.http_request(method, self.daemon.url(path), headers=headers)

    def test_size_budget_and_gzip(self):
        z = self.get({"Accept-Encoding": "gzip, deflate, br"})
        plain = self.get()
        self.assertEqual((z.status, plain.status), (200, 200))
        self.assertEqual(z.headers.get("content-encoding"), "gzip")
        self.assertNotIn("content-encoding", plain.headers)
        self.assertLessEqual(len(z.raw), BUDGET, "the snippet is %d bytes gzipped" % len(z.raw))
        self.assertEqual(gzip.decompress(z.raw), plain.raw)
        self.assertTrue(plain.raw.startswith(b"(") and b"/v1/events?key=" in plain.raw, plain.raw[:80])
        self.assertEqual(plain.headers.get("content-type"), "text/javascript; charset=utf-8")
        self.assertNotIn(b"\n//", plain.raw, "comments are not served")

    def test_caching(self):
        first = self.get()
        etag = first.headers.get("etag")
        self.assertRegex(etag or "", r'^"[0-9a-f]{24}"$')
        self.assertEqual(first.headers.get("cache-control"), "public, max-age=3600")
        self.assertIn("Accept-Encoding", first.headers.get("vary", ""))
        again = self.get({"If-None-Match": etag})
        self.assertEqual((again.status, again.raw), (304, b""))
        self.assertEqual(again.headers.get("etag"), etag)
        listed = self.get({"If-None-Match": '"other", %s' % etag, "Accept-Encoding": "gzip"})
        self.assertEqual(listed.status, 304)
        stale = self.get({"If-None-Match": '"0123456789abcdef01234567"'})
        self.assertEqual(stale.status, 200)
        self.assertEqual(self.get({"Accept-Encoding": "gzip"}).headers.get("etag"), etag,
                         "one ETag for one file, whatever its encoding")

    def test_accept_encoding_variants(self):
        for ae, gz in (("gzip;q=0", False), ("gzip; q=0.0, identity", False), ("*", True),
                       ("br, GZIP;q=0.5", True), ("identity", False), ("", False)):
            with self.subTest(accept_encoding=ae):
                resp = self.get({"Accept-Encoding": ae})
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.headers.get("content-encoding") == "gzip", gz)

    def test_head_and_unknown_names(self):
        head = self.get(method="HEAD")
        self.assertEqual((head.status, head.raw), (200, b""))
        self.assertIsNotNone(head.headers.get("etag"))
        self.assertError(self.get(path="/js/other.js"), 404, "not_found")
        self.assertError(self.get(path="/js/../config.json"), 404, "not_found")
        self.assertError(self.get(path="/js/milepost.js", method="POST"), 405, "method_not_allowed")


if __name__ == "__main__":
    harness.main()
