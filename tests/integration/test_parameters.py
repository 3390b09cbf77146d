#!/usr/bin/env python3
"""Query parameters of the query API: one that no endpoint reads (a typo,
windw=1h) answers 400 unknown_parameter naming it and what the endpoint
takes, instead of silently using the default; every parameter of every URL
the docs show is read."""

import os
import re
import urllib.parse

import harness
from admin_api import api_call, key_entry, new_api_key

READ = new_api_key("rk_params")
ADMIN = new_api_key("ak_params")
DOCS = [os.path.join(harness.REPO_ROOT, p) for p in ("README.md", "docs/api.md", "docs/alerts.md",
                                                     "docs/dashboard.md", "docs/operations.md")]

# Each read endpoint with parameters it takes, so that only the typo is
# wrong: those the dashboard (server/dashboard/app.js) sends.
RANGE = {"site": "shop", "from": "2026-11-01", "to": "2026-11-30"}
ENDPOINTS = [
    ("/api/v1/sites", {"site": "shop"}),
    ("/api/v1/funnel", dict(RANGE, steps="product_viewed,cart_added", window="7d", order="ordered",
                            breakdown="channel", filter="channel=Direct")),
    ("/api/v1/attribution", dict(RANGE, dimension="channel", lookback="30d", models="all")),
    ("/api/v1/milestones", dict(RANGE, interval="week")),
    ("/api/v1/signals", dict(RANGE, window="14d")),
    ("/api/v1/alerts/events", dict(RANGE, limit="20")),
    ("/api/v1/rejected", {"site": "shop", "limit": "1", "since": "2026-11-01T00:00:00Z",
                          "until": "2026-11-30T00:00:00Z"}),
    ("/api/v1/plan", {"site": "shop"}),
    ("/api/v1/funnel", {"site": "shop", "steps": "product_viewed,cart_added"}),
    ("/api/v1/milestones", {"site": "shop"}),
    ("/api/v1/attribution", {"site": "shop"}),
    ("/api/v1/signals", {"site": "shop"}),
    ("/api/v1/alerts", {"site": "shop"}),
    ("/api/v1/alerts/events", {"site": "shop"}),
    ("/api/v1/alerts/rules", {"site": "shop"}),
    ("/api/v1/rejected", {"site": "shop"}),
]


class ParameterTest(harness.DaemonTestCase):
    daemon_config = {"plan": os.path.join(harness.REPO_ROOT, "config", "plan.json"),
                     "pii_hash_key": "parameter-test-pii-key-0123456789",
                     "api_keys": [key_entry("reader", "read", READ), key_entry("admin", "admin", ADMIN)]}

    def test_typo_is_named(self):
        for path, params in ENDPOINTS:
            with self.subTest(path=path):
                ok = api_call(self.daemon, "GET", path, READ, params)
                self.assertEqual(ok.status, 200, "%r" % (ok,))
                resp = api_call(self.daemon, "GET", path, READ, dict(params, windw="1h"))
                self.assertError(resp, 400, "unknown_parameter")
                message = resp.body["error"]["message"]
                self.assertIn("'windw'", message)
                for name in params:
                    self.assertIn(name, message.split("takes", 1)[1], "what it takes: %s" % message)

    def test_unknown_event_is_named(self):
        """A typo in an event name answers 400 unknown_event, not zeros."""
        for path, params in (("/api/v1/funnel", {"steps": "product_viewed,cart_aded"}),
                             ("/api/v1/funnel", {"steps": "product_viewed,cart_added", "exclude": "cart_aded"}),
                             ("/api/v1/attribution", {"conversion": "cart_aded"}),
                             ("/api/v1/signals", {"conversion": "cart_aded"}),
                             ("/api/v1/milestones", {"names": "cart_aded"})):
            with self.subTest(path=path, params=params):
                resp = api_call(self.daemon, "GET", path, READ, dict(params, site="shop"))
                self.assertError(resp, 400, "unknown_event")
                self.assertIn("'cart_aded'", resp.body["error"]["message"])
                fixed = {k: v.replace("cart_aded", "cart_added") for k, v in params.items()}
                self.assertEqual(api_call(self.daemon, "GET", path, READ, dict(fixed, site="shop")).status, 200)

    def test_admin_calls_too(self):
        resp = api_call(self.daemon, "POST", "/api/v1/rejected/replay", ADMIN, {"site": "shop", "limt": "5"})
        self.assertError(resp, 400, "unknown_parameter")
        self.assertEqual(harness.psql_value(self.db, "SELECT count(*) FROM rejected_events"
                                                     " WHERE replayed_at IS NOT NULL"), "0")

    def test_documented_urls_are_read(self):
        """The README's, the API reference's and the Grafana examples' URLs
        (dates and placeholders filled in) use no parameter the endpoint
        does not read."""
        urls = set()
        for doc in DOCS:
            with open(doc) as f:
                urls.update(re.findall(r"(/api/v1/[a-z/_{}]+)\?([^ `'\")\]]+)", f.read()))
        self.assertGreater(len(urls), 10, urls)
        for path, query in sorted(urls):
            if "{" in path:
                continue  # a rule's id: that endpoint's own tests
            query = re.sub(r"\$\{__(from|to)[^}]*\}", "2026-11-01", query)
            params = urllib.parse.parse_qsl(query)
            method = "POST" if path.endswith("/replay") else "GET"
            with self.subTest(url=path + "?" + query):
                resp = api_call(self.daemon, method, path, ADMIN if method == "POST" else READ, params)
                self.assertNotEqual(harness.error_code(resp), "unknown_parameter", "%r" % (resp,))


if __name__ == "__main__":
    harness.main()
