#!/usr/bin/env python3
"""CORS and origins: a preflight is answered for an origin some site allows
and refused for any other; a browser request is accepted (and may read the
answer) only from its own site's allowed origins, refused with 403
origin_not_allowed and nothing stored otherwise; wildcard subdomains match
subdomains only; a request without Origin (a server) is not concerned; an
invalid pattern in the configuration stops the daemon from starting."""

import harness
from harness import BLOG_KEY, SHOP_KEY

SITES = [
    {"id": "shop", "name": "Example shop", "write_key": SHOP_KEY,
     "allowed_origins": ["https://shop.example", "https://*.shop.example",
                         "http://127.0.0.1:8080"]},
    {"id": "blog", "name": "Example blog", "write_key": BLOG_KEY,
     "allowed_origins": ["https://blog.example"]},
]


class CorsCase(harness.DaemonTestCase):
    daemon_config = {"sites": SITES}

    def preflight(self, origin, path="/v1/events"):
        hdrs = {"Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, x-milepost-key"}
        if origin is not None:
            hdrs["Origin"] = origin
        return harness.http_request("OPTIONS", self.daemon.url(path), headers=hdrs)

    def send(self, origin, key=SHOP_KEY, path="/v1/events"):
        ev = harness.make_event(name="cart_viewed")
        hdrs = {"Origin": origin} if origin is not None else {}
        return ev["event_id"], self.post(ev, key=key, path=path, headers=hdrs)

    def stored(self, event_id, site="shop"):
        return harness.event_id_counts(self.db, [event_id], site_id=site).get(event_id, 0)

    def test_preflight_allowed_origins(self):
        for origin, path in (("https://shop.example", "/v1/events"),
                             ("https://blog.example", "/v1/events"),
                             ("https://www.shop.example", "/v1/batch"),
                             ("http://127.0.0.1:8080", "/v1/t")):
            with self.subTest(origin=origin, path=path):
                resp = self.preflight(origin, path)
                self.assertEqual(resp.status, 204, "%r" % (resp,))
                self.assertEqual(resp.raw, b"")
                h = resp.headers
                self.assertEqual(h.get("access-control-allow-origin"), origin)
                self.assertIn("POST", h.get("access-control-allow-methods", ""))
                allowed = [x.strip().lower() for x in h.get("access-control-allow-headers", "").split(",")]
                for needed in ("content-type", "x-milepost-key", "authorization", "content-encoding"):
                    self.assertIn(needed, allowed)
                self.assertEqual(h.get("access-control-max-age"), "86400")
                self.assertIn("Origin", h.get("vary", ""))
                self.assertNotIn("access-control-allow-credentials", h)

    def test_preflight_refused(self):
        for origin in ("https://evil.example", "https://shop.example.evil.example",
                       "http://shop.example", "null", None):
            with self.subTest(origin=origin):
                resp = self.preflight(origin)
                self.assertError(resp, 403, "origin_not_allowed")
                self.assertNotIn("access-control-allow-origin", resp.headers)

    def test_allowed_origin_posts_and_reads(self):
        for origin in ("https://shop.example", "https://a.b.shop.example", "http://127.0.0.1:8080"):
            with self.subTest(origin=origin):
                eid, resp = self.send(origin)
                self.assertAccepted(resp, 1)
                self.assertEqual(resp.headers.get("access-control-allow-origin"), origin)
                self.assertIn("Origin", resp.headers.get("vary", ""))
                self.assertEqual(self.stored(eid), 1)

    def test_other_origins_refused_and_nothing_stored(self):
        # blog.example is allowed, but for the blog, not the shop.
        for origin in ("https://blog.example", "https://shop.example:8443", "https://shop.example",
                       "https://evilshop.example", "null"):
            if origin == "https://shop.example":
                eid, resp = self.send(origin, key=BLOG_KEY)
                site = "blog"
            else:
                eid, resp = self.send(origin)
                site = "shop"
            with self.subTest(origin=origin, site=site):
                self.assertError(resp, 403, "origin_not_allowed")
                self.assertNotIn("access-control-allow-origin", resp.headers)
                self.assertEqual(self.stored(eid, site), 0)

    def test_segment_endpoints_check_origins_too(self):
        ok = self.post({"event": "cart_viewed", "anonymousId": "a1", "writeKey": SHOP_KEY},
                       key=None, path="/v1/track", headers={"Origin": "https://shop.example"})
        self.assertEqual(ok.status, 200, "%r" % (ok,))
        self.assertEqual(ok.headers.get("access-control-allow-origin"), "https://shop.example")
        bad = self.post({"event": "cart_viewed", "anonymousId": "a1", "writeKey": SHOP_KEY},
                        key=None, path="/v1/track", headers={"Origin": "https://evil.example"})
        self.assertError(bad, 403, "origin_not_allowed")
        settings = self.daemon.get("/v1/projects/%s/settings" % SHOP_KEY,
                                   headers={"Origin": "https://www.shop.example"})
        self.assertEqual(settings.status, 200)
        self.assertEqual(settings.headers.get("access-control-allow-origin"), "https://www.shop.example")
        self.assertError(self.daemon.get("/v1/projects/%s/settings" % SHOP_KEY,
                                         headers={"Origin": "https://evil.example"}),
                         403, "origin_not_allowed")

    def test_servers_without_origin_pass(self):
        eid, resp = self.send(None)
        self.assertAccepted(resp, 1)
        self.assertNotIn("access-control-allow-origin", resp.headers)
        self.assertEqual(self.stored(eid), 1)


class BadPatternCase(harness.TestCase):
    def test_invalid_origin_pattern_stops_start(self):
        db = harness.fresh_database()
        sites = [dict(SITES[0], allowed_origins=["https://shop.example/checkout"])]
        with self.assertRaises(harness.DaemonExited) as caught:
            harness.Daemon(db, sites=sites)
        self.assertIn("allowed_origins[0]", str(caught.exception))


if __name__ == "__main__":
    harness.main()
