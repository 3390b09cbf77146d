#!/usr/bin/env python3
"""API keys of the query and admin API: `Authorization: Bearer KEY` checked
against the SHA-256 digests of the config, read and admin scopes, the sites
a key may see and the `site` parameter, and the plaintext key never logged."""

import base64
import time

import harness
from harness import BLOG_KEY, SHOP_KEY, SITES, make_event, psql_value
from admin_api import api_call, erase, key_entry, list_rejected, new_api_key, replay, sha256_hex

ADMIN = new_api_key("ak_admin")
READ = new_api_key("ak_read")
SHOP_READ = new_api_key("ak_shopread")
SHOP_ADMIN = new_api_key("ak_shopadmin")
BOTH_READ = new_api_key("ak_bothread")
BLOG_UPPER = new_api_key("ak_blogupper")

API_KEYS = [
    key_entry("ops-admin", "admin", ADMIN),
    key_entry("dashboard", "read", READ),
    key_entry("shop-dashboard", "read", SHOP_READ, sites=["shop"]),
    key_entry("shop-ops", "admin", SHOP_ADMIN, sites=["shop"]),
    key_entry("both-dashboard", "read", BOTH_READ, sites=["shop", "blog"]),
    # Digests are hex: upper case is the same digest.
    dict(key_entry("blog-dashboard", "read", BLOG_UPPER, sites=["blog"]),
         key_sha256=sha256_hex(BLOG_UPPER).upper()),
]
ALL_KEYS = [ADMIN, READ, SHOP_READ, SHOP_ADMIN, BOTH_READ, BLOG_UPPER]

# (method, path) of every endpoint behind an API key, and the scope it needs.
ENDPOINTS = [("GET", "/api/v1/rejected", "read"),
             ("GET", "/api/v1/sites", "read"),
             ("POST", "/api/v1/rejected/replay", "admin"),
             ("DELETE", "/api/v1/people/someone", "admin")]


class ApiKeyTest(harness.DaemonTestCase):

    daemon_config = {"api_keys": API_KEYS}

    def call(self, method, path, key=None, **kw):
        return api_call(self.daemon, method, path, key, **kw)

    def post_person(self, person, key=SHOP_KEY, site_id="shop"):
        """Stores one event of person; returns its event_id."""
        e = make_event(anonymous_id=person)
        self.assertAccepted(self.post(e, key=key), 1)
        self.assertEqual(harness.event_id_counts(self.db, [e["event_id"]], site_id), {e["event_id"]: 1})
        return e["event_id"]

    def person_events(self, person, site_id="shop"):
        return int(psql_value(self.db, "SELECT count(*) FROM events WHERE site_id = :'s'"
                                       " AND anonymous_id = :'p'", s=site_id, p=person))

    def audit_rows(self):
        return int(psql_value(self.db, "SELECT count(*) FROM erasure_audit"))

    # -- who may call at all

    def test_missing_key(self):
        for method, path, _ in ENDPOINTS:
            with self.subTest(endpoint=path):
                self.assertError(self.call(method, path, params={"site": "shop"}), 401, "missing_api_key")

    def test_other_authorization_schemes(self):
        basic = "Basic " + base64.b64encode(("ops-admin:" + ADMIN).encode()).decode()
        for header in (basic, "Token " + ADMIN, ADMIN, "Bearer" + ADMIN, "Bearer", "Bearer ",
                       "Bearer    ", "Digest username=\"ops\""):
            for method, path, _ in ENDPOINTS:
                with self.subTest(authorization=header, endpoint=path):
                    self.assertError(self.call(method, path, params={"site": "shop"}, authorization=header),
                                     401, "missing_api_key")

    def test_scheme_is_case_insensitive(self):
        for scheme in ("bearer", "BEARER", "BeArEr"):
            with self.subTest(scheme=scheme):
                resp = self.call("GET", "/api/v1/rejected", params={"site": "shop"},
                                 authorization=scheme + " " + READ)
                self.assertEqual(resp.status, 200, "%r" % (resp,))

    def test_unknown_key(self):
        for presented in (new_api_key("ak_admin"), ADMIN + "x", ADMIN[:-1], ADMIN.upper(),
                          sha256_hex(ADMIN),  # the stored digest is not the key
                          sha256_hex(READ).upper(), "x"):
            for method, path, _ in ENDPOINTS:
                with self.subTest(key=presented, endpoint=path):
                    self.assertError(self.call(method, path, presented, params={"site": "shop"}),
                                     401, "invalid_api_key")

    def test_write_key_is_forbidden(self):
        for write_key, site in ((SHOP_KEY, "shop"), (BLOG_KEY, "blog")):
            for method, path, _ in ENDPOINTS:
                with self.subTest(key=write_key, endpoint=path):
                    self.assertError(self.call(method, path, write_key, params={"site": site}),
                                     403, "forbidden")

    # -- scopes

    def test_read_key_cannot_replay_or_erase(self):
        person = "anon-readonly-" + new_api_key("p")
        self.post_person(person)
        bad = make_event(name="Not_Valid")
        self.assertAccepted(self.post(bad), 0, [0])
        audits = self.audit_rows()
        for key in (READ, SHOP_READ, BOTH_READ):
            with self.subTest(key=key):
                self.assertError(replay(self.daemon, key, site="shop"), 403, "forbidden")
                self.assertError(erase(self.daemon, key, person, site="shop"), 403, "forbidden")
        self.assertError(replay(self.daemon, BLOG_UPPER, site="blog"), 403, "forbidden")
        self.assertError(erase(self.daemon, BLOG_UPPER, person, site="blog"), 403, "forbidden")
        self.assertEqual(self.person_events(person), 1, "a read key erased events")
        self.assertEqual(self.audit_rows(), audits, "a refused erasure left an audit row")
        self.assertNotRegex(self.daemon.log(), "replay of site shop by '(dashboard|shop-dashboard|both-dashboard)'")

    def test_read_keys_can_list(self):
        for key, site in ((READ, "shop"), (READ, "blog"), (SHOP_READ, "shop"), (BOTH_READ, "blog"),
                          (BLOG_UPPER, "blog"), (ADMIN, "shop"), (SHOP_ADMIN, "shop")):
            with self.subTest(key=key, site=site):
                resp = list_rejected(self.daemon, key, site=site)
                self.assertEqual(resp.status, 200, "%r" % (resp,))
                self.assertJsonType(resp)
                self.assertEqual(resp.body["site"], site)

    def test_admin_key_can_do_everything(self):
        for key in (ADMIN, SHOP_ADMIN):
            with self.subTest(key=key):
                person = "anon-admin-" + new_api_key("p")
                self.post_person(person)
                resp = list_rejected(self.daemon, key, site="shop")
                self.assertEqual((resp.status, resp.body.get("site")), (200, "shop"), "%r" % (resp,))
                resp = replay(self.daemon, key, site="shop")
                self.assertEqual((resp.status, resp.body.get("site")), (200, "shop"), "%r" % (resp,))
                resp = erase(self.daemon, key, person, site="shop")
                self.assertEqual(resp.status, 200, "%r" % (resp,))
                self.assertEqual(resp.body["erased"]["events"], 1)
                self.assertEqual(self.person_events(person), 0)

    # -- the site parameter

    def test_site_required_when_key_sees_several(self):
        person = "anon-nosite-" + new_api_key("p")
        self.post_person(person)
        for key in (READ, BOTH_READ, ADMIN):
            for params in ({}, {"site": ""}):
                with self.subTest(key=key, params=params):
                    self.assertError(list_rejected(self.daemon, key, **params), 400, "invalid_parameter")
        self.assertError(replay(self.daemon, ADMIN), 400, "invalid_parameter")
        self.assertError(erase(self.daemon, ADMIN, person), 400, "invalid_parameter")
        self.assertEqual(self.person_events(person), 1, "erased without a site")

    def test_site_selects(self):
        for key in (READ, BOTH_READ, ADMIN):
            for site in ("shop", "blog"):
                with self.subTest(key=key, site=site):
                    resp = list_rejected(self.daemon, key, site=site)
                    self.assertEqual((resp.status, resp.body.get("site")), (200, site), "%r" % (resp,))

    def test_single_site_key_needs_no_site(self):
        for key, site in ((SHOP_READ, "shop"), (SHOP_ADMIN, "shop"), (BLOG_UPPER, "blog")):
            with self.subTest(key=key):
                resp = list_rejected(self.daemon, key)
                self.assertEqual((resp.status, resp.body.get("site")), (200, site), "%r" % (resp,))
        resp = replay(self.daemon, SHOP_ADMIN)
        self.assertEqual((resp.status, resp.body.get("site")), (200, "shop"), "%r" % (resp,))
        person = "anon-defaultsite-" + new_api_key("p")
        self.post_person(person)
        resp = erase(self.daemon, SHOP_ADMIN, person)
        self.assertEqual((resp.status, resp.body.get("site")), (200, "shop"), "%r" % (resp,))
        self.assertEqual(self.person_events(person), 0)

    def test_sites_lists_what_the_key_sees(self):
        names = {s["id"]: s["name"] for s in SITES}
        for key, ids in ((ADMIN, ["shop", "blog"]), (READ, ["shop", "blog"]), (BOTH_READ, ["shop", "blog"]),
                         (SHOP_READ, ["shop"]), (SHOP_ADMIN, ["shop"]), (BLOG_UPPER, ["blog"])):
            with self.subTest(key=key):
                resp = self.call("GET", "/api/v1/sites", key)
                self.assertEqual(resp.status, 200, resp)
                self.assertEqual(resp.body, {"sites": [{"id": i, "name": names[i]} for i in ids]})

    def test_site_outside_the_key(self):
        person = "anon-otherside-" + new_api_key("p")
        self.post_person(person, key=BLOG_KEY, site_id="blog")
        self.assertError(list_rejected(self.daemon, SHOP_READ, site="blog"), 403, "forbidden")
        self.assertError(list_rejected(self.daemon, BLOG_UPPER, site="shop"), 403, "forbidden")
        self.assertError(replay(self.daemon, SHOP_ADMIN, site="blog"), 403, "forbidden")
        self.assertError(erase(self.daemon, SHOP_ADMIN, person, site="blog"), 403, "forbidden")
        self.assertEqual(self.person_events(person, "blog"), 1, "erased in a site the key may not see")

    def test_unknown_site(self):
        for key in (ADMIN, READ, SHOP_READ):
            for site in ("nope", "Shop", "shop2"):
                with self.subTest(key=key, site=site):
                    self.assertError(list_rejected(self.daemon, key, site=site), 404, "not_found")
        self.assertError(replay(self.daemon, ADMIN, site="nope"), 404, "not_found")
        self.assertError(erase(self.daemon, ADMIN, "someone", site="nope"), 404, "not_found")

    # -- secrecy

    def test_keys_never_logged(self):
        unknown = new_api_key("ak_unknown")
        for key in ALL_KEYS + [unknown]:
            for method, path, _ in ENDPOINTS:
                for site in ("shop", "blog", "nope", ""):
                    self.call(method, path, key, params={"site": site})
        self.call("GET", "/api/v1/rejected", authorization="Basic " + ADMIN)
        log = self.daemon.log()
        self.assertIn("API call refused", log, "refusals are logged (the check below would be vacuous)")
        for key in ALL_KEYS + [unknown]:
            self.assertNotIn(key, log, "a plaintext API key is in the log")


class ApiKeyOwnDaemonTest(harness.TestCase):

    def test_keys_never_logged_at_debug(self):
        db = harness.fresh_database()
        d = self.start_daemon(db, api_keys=API_KEYS, log_level="debug")
        unknown = new_api_key("ak_unknown")
        for key in ALL_KEYS + [unknown, SHOP_KEY]:
            for method, path, _ in ENDPOINTS:
                api_call(d, method, path, key, {"site": "shop"})
        time.sleep(0.2)
        log = d.log()
        for key in ALL_KEYS + [unknown]:
            self.assertNotIn(key, log, "a plaintext API key is in the debug log")
        self.assertEqual(d.stop(), 0)

    def test_one_site_config_needs_no_site(self):
        db = harness.fresh_database()
        d = self.start_daemon(db, api_keys=API_KEYS[:2], sites=SITES[:1])
        resp = list_rejected(d, READ)
        self.assertEqual((resp.status, resp.body.get("site")), (200, "shop"), "%r" % (resp,))
        resp = replay(d, ADMIN)
        self.assertEqual((resp.status, resp.body.get("site")), (200, "shop"), "%r" % (resp,))
        self.assertError(list_rejected(d, READ, site="blog"), 404, "not_found")
        self.assertEqual(d.stop(), 0)

    def test_keys_follow_a_reload(self):
        db = harness.fresh_database()
        d = self.start_daemon(db, api_keys=[key_entry("dashboard", "read", READ),
                                            key_entry("ops", "admin", ADMIN)])
        fresh = new_api_key("ak_fresh")
        self.assertEqual(list_rejected(d, READ, site="shop").status, 200)
        self.assertError(list_rejected(d, fresh, site="shop"), 401, "invalid_api_key")
        # READ revoked, ADMIN demoted to read, a new key.
        d.rewrite_config(api_keys=[key_entry("ops", "read", ADMIN), key_entry("fresh", "read", fresh)])
        d.reload()
        self.assertError(list_rejected(d, READ, site="shop"), 401, "invalid_api_key")
        self.assertEqual(list_rejected(d, fresh, site="shop").status, 200)
        self.assertEqual(list_rejected(d, ADMIN, site="shop").status, 200)
        self.assertError(replay(d, ADMIN, site="shop"), 403, "forbidden")
        self.assertEqual(d.stop(), 0)

    def test_no_keys_configured(self):
        db = harness.fresh_database()
        d = self.start_daemon(db)
        for method, path, _ in ENDPOINTS:
            with self.subTest(endpoint=path):
                self.assertError(api_call(d, method, path, ADMIN, {"site": "shop"}), 401, "invalid_api_key")
                self.assertError(api_call(d, method, path, SHOP_KEY, {"site": "shop"}), 403, "forbidden")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    harness.main()
