#!/usr/bin/env python3
"""GET / and GET /dashboard/{name}: the built-in dashboard's page, script
and styles, compiled into the binary. Checked: the types, a strict
Content-Security-Policy (only this origin, no inline script or style, no
framing) and nosniff on every file, revalidation (no-cache, ETag, 304),
gzip, that the page loads only its own files (no CDN), and 404 for other
names. What the page shows is tests/browser/test_dashboard.py's part."""

import gzip
import re

import harness

FILES = {"/": "text/html; charset=utf-8",
         "/dashboard/index.html": "text/html; charset=utf-8",
         "/dashboard/app.js": "text/javascript; charset=utf-8",
         "/dashboard/app.css": "text/css; charset=utf-8"}


class DashboardFilesCase(harness.DaemonTestCase):
    def get(self, path="/", headers=None, method="GET"):
        return harness.http_request(method, self.daemon.url(path), headers=headers)

    def test_types_and_security_headers(self):
        for path, kind in FILES.items():
            with self.subTest(path=path):
                resp = self.get(path)
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.headers.get("content-type"), kind)
                self.assertEqual(resp.headers.get("x-content-type-options"), "nosniff")
                csp = resp.headers.get("content-security-policy", "")
                directives = dict((d.split(" ", 1) + [""])[:2] for d in
                                  (x.strip() for x in csp.split(";")) if d)
                self.assertEqual(directives.get("default-src"), "'self'")
                self.assertEqual(directives.get("script-src"), "'self'")
                self.assertEqual(directives.get("frame-ancestors"), "'none'")
                self.assertNotIn("unsafe", csp)
                self.assertEqual(resp.headers.get("cache-control"), "no-cache")

    def test_page_uses_only_its_own_files(self):
        page = self.get().raw.decode()
        self.assertEqual(page, self.get("/dashboard/index.html").raw.decode())
        refs = re.findall(r'(?:src|href)="([^"]*)"', page)
        self.assertIn("dashboard/app.js", refs)
        self.assertIn("dashboard/app.css", refs)
        for ref in refs:
            self.assertFalse(re.match(r"^(?:[a-z]+:)?//", ref), "no other host: %s" % ref)
        self.assertNotRegex(page, r"<script>(?!</script>)|<script [^>]*>[^<]", "no inline script")
        self.assertNotIn(" style=", page, "no inline style")

    def test_revalidation_and_gzip(self):
        first = self.get("/dashboard/app.js")
        etag = first.headers.get("etag")
        self.assertRegex(etag or "", r'^"[0-9a-f]{24}"$')
        again = self.get("/dashboard/app.js", {"If-None-Match": etag})
        self.assertEqual((again.status, again.raw), (304, b""))
        z = self.get("/dashboard/app.js", {"Accept-Encoding": "gzip"})
        self.assertEqual(z.headers.get("content-encoding"), "gzip")
        self.assertEqual(gzip.decompress(z.raw), first.raw)

    def test_other_names(self):
        self.assertError(self.get("/dashboard/nope.js"), 404, "not_found")
        self.assertError(self.get("/dashboard/"), 404, "not_found")
        self.assertError(self.get("/index.html"), 404, "not_found")
        self.assertError(self.get("/dashboard/milepost.js"), 404, "not_found")
        self.assertError(self.get("/js/app.js"), 404, "not_found")
        self.assertError(self.get("/", method="POST"), 405, "method_not_allowed")
        head = self.get("/", method="HEAD")
        self.assertEqual((head.status, head.raw), (200, b""))


if __name__ == "__main__":
    harness.main()
