#!/usr/bin/env python3
"""Privacy: cookieless visitor ids (a keyed hash of site, IP and User-Agent
under a daily salt; the raw IP never stored nor logged), PII properties
hashed or dropped (also in rejected_events), and URL parameters stripped."""

import harness
from harness import BLOG_KEY, SHOP_KEY, make_event, new_id, psql, psql_value, run_milepost

UA_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
UA_SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1"

# Configuration errors must stop the start before any database work.
NO_DB = harness.db_url("milepost_no_such_database")


def cookieless(**fields):
    return make_event(anonymous_id=None, **fields)


class CookielessCase(harness.TestCase):

    def send_cookieless(self, daemon, db, ip=None, ua=UA_FIREFOX, key=SHOP_KEY, site_id="shop", xff=None,
                        **fields):
        """Post one event without ids from ip (through X-Forwarded-For) and
        return the anonymous_id it was stored with."""
        e = cookieless(**fields)
        headers = {"User-Agent": ua}
        if xff is not None or ip is not None:
            headers["X-Forwarded-For"] = xff if xff is not None else ip
        resp = daemon.post_events(e, key=key, headers=headers)
        self.assertAccepted(resp, 1)
        rows = harness.event_rows(db, [e["event_id"]], site_id)
        self.assertIn(e["event_id"], rows)
        return rows[e["event_id"]]["anonymous_id"]


class CookielessTest(CookielessCase, harness.DaemonTestCase):

    daemon_config = {"client_ip_header": "X-Forwarded-For", "log_level": "debug"}

    def send(self, ip, ua=UA_FIREFOX, **kw):
        return self.send_cookieless(self.daemon, self.db, ip, ua, **kw)

    def test_id_is_the_keyed_hash(self):
        salt = harness.todays_salt(self.db)
        self.assertIsNotNone(salt, "the day's salt is in visitor_salts")
        self.assertEqual(len(salt), 32)
        got = self.send("198.51.100.23")
        self.assertRegex(got, r"^v_[0-9a-f]{32}$")
        self.assertEqual(got, harness.visitor_id(salt, "shop", "198.51.100.23", UA_FIREFOX))

    def test_same_browser_same_id(self):
        first = self.send("198.51.100.24")
        self.assertEqual(self.send("198.51.100.24"), first)
        self.assertEqual(self.send("198.51.100.24", name="cart_viewed"), first)

    def test_other_user_agent_other_id(self):
        self.assertNotEqual(self.send("198.51.100.25", UA_FIREFOX), self.send("198.51.100.25", UA_SAFARI))

    def test_other_ip_other_id(self):
        self.assertNotEqual(self.send("198.51.100.26"), self.send("198.51.100.27"))

    def test_other_site_other_id(self):
        shop = self.send("198.51.100.28")
        blog = self.send("198.51.100.28", key=BLOG_KEY, site_id="blog")
        self.assertNotEqual(shop, blog)
        self.assertEqual(blog, harness.visitor_id(harness.todays_salt(self.db), "blog", "198.51.100.28",
                                                  UA_FIREFOX))

    def test_last_forwarded_address_counts(self):
        """The last X-Forwarded-For entry is what our proxy saw; the earlier
        ones are the client's word and change nothing."""
        a = self.send(None, xff="192.0.2.1, 198.51.100.29")
        b = self.send(None, xff="10.9.8.7,198.51.100.29")
        c = self.send("198.51.100.29")
        self.assertEqual({a, b}, {c})
        self.assertNotEqual(self.send(None, xff="198.51.100.29, 192.0.2.1"), c)

    def test_header_address_checked_and_canonical(self):
        """Only an IP address counts, in one spelling: anything else in the
        header is not an address, and the socket's counts instead."""
        peer = harness.visitor_id(harness.todays_salt(self.db), "shop", "127.0.0.1", UA_FIREFOX)
        for junk in ("not-an-address", "198.51.100.300", "1.2.3.4.5", "unknown", "::zz", "<script>"):
            with self.subTest(header=junk):
                self.assertEqual(self.send(None, xff=junk), peer)
        self.assertEqual(self.send(None, xff="2001:DB8:0:0::1"), self.send(None, xff="2001:db8::1"))
        self.assertEqual(self.send(None, xff="2001:db8::1"),
                         harness.visitor_id(harness.todays_salt(self.db), "shop", "2001:db8::1", UA_FIREFOX))

    def test_socket_address_without_the_header(self):
        got = self.send(None)
        self.assertEqual(got, harness.visitor_id(harness.todays_salt(self.db), "shop", "127.0.0.1", UA_FIREFOX))

    def test_client_ids_win(self):
        """Only an event with neither id gets a cookieless one."""
        given = make_event(anonymous_id="anon-own-1")
        user_only = make_event(anonymous_id=None, user_id="user-own-1")
        self.assertAccepted(self.post({"batch": [given, user_only]},
                                      headers={"X-Forwarded-For": "198.51.100.30"}), 2)
        rows = harness.event_rows(self.db, [given["event_id"], user_only["event_id"]])
        self.assertEqual(rows[given["event_id"]]["anonymous_id"], "anon-own-1")
        self.assertEqual((rows[user_only["event_id"]]["anonymous_id"], rows[user_only["event_id"]]["user_id"]),
                         (None, "user-own-1"))

    def test_raw_ip_stored_and_logged_nowhere(self):
        ip = "203.0.113.77"
        headers = {"X-Forwarded-For": "192.0.2.200, " + ip, "User-Agent": UA_SAFARI}
        ok = cookieless(url="https://shop.example/?ip=" + ip.replace(".", "-"))
        bad = cookieless(name="Bad")
        resp = self.post({"batch": [ok, bad]}, headers=headers)
        self.assertAccepted(resp, 1, [1])
        expected = harness.visitor_id(harness.todays_salt(self.db), "shop", ip, UA_SAFARI)
        self.assertEqual(harness.event_rows(self.db, [ok["event_id"]])[ok["event_id"]]["anonymous_id"], expected)
        (row,) = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual(row["derived_anonymous_id"], expected, "a rejected event keeps the derived id")
        self.assertEqual(row["payload"], bad, "the payload is the event as sent")
        self.assertEqual(harness.tables_containing(self.db, ip), {}, "the raw IP is stored nowhere")
        self.assertNotIn(ip, self.daemon.log(), "the raw IP is not logged")


class SaltRotationTest(CookielessCase):

    def test_salt_rotation_on_reload(self):
        db = harness.fresh_database()
        d = self.start_daemon(db, client_ip_header="X-Forwarded-For")
        ip = "198.51.100.40"
        first = self.send_cookieless(d, db, ip)
        self.assertEqual(first, harness.visitor_id(harness.todays_salt(db), "shop", ip, UA_FIREFOX))
        # A new salt for today, as another collector of the cluster might
        # have made it, and a stale one of yesterday.
        psql(db, "UPDATE visitor_salts SET salt = decode(md5(random()::text) || md5(random()::text), 'hex')")
        psql(db, "INSERT INTO visitor_salts (day, salt) VALUES ((now() AT TIME ZONE 'UTC')::date - 1,"
                 " decode(md5(random()::text) || md5(random()::text), 'hex'))")
        d.reload()
        second = self.send_cookieless(d, db, ip)
        self.assertNotEqual(second, first, "a new salt gives a new id")
        self.assertEqual(second, harness.visitor_id(harness.todays_salt(db), "shop", ip, UA_FIREFOX))
        self.assertEqual(self.send_cookieless(d, db, ip), second, "stable under the new salt")
        self.assertEqual(psql(db, "SELECT day = (now() AT TIME ZONE 'UTC')::date FROM visitor_salts"), [["t"]],
                         "one salt row, today's (UTC): older ones are deleted")
        self.assertEqual(d.stop(), 0)

    def test_salt_shared_by_collectors(self):
        """A second collector on the same database uses the same salt, so a
        visitor keeps its id whichever collector it reaches."""
        db = harness.fresh_database()
        d1 = self.start_daemon(db, client_ip_header="X-Forwarded-For")
        d2 = self.start_daemon(db, client_ip_header="X-Forwarded-For")
        ip = "198.51.100.41"
        self.assertEqual(self.send_cookieless(d1, db, ip), self.send_cookieless(d2, db, ip))
        self.assertEqual(psql_value(db, "SELECT count(*) FROM visitor_salts"), "1")
        self.assertEqual(d1.stop(), 0)
        self.assertEqual(d2.stop(), 0)


# --------------------------------------------------------------------------
# PII

PII_KEY = "0123456789abcdef0123456789abcdef"          # 32 bytes: used as it is
OTHER_KEY = "fedcba9876543210fedcba9876543210fedcba98"  # 40 bytes
LONG_KEY = "k" * 80                                     # over 64 bytes: its digest is the key

PII_PLAN = {
    "version": 4,
    "macro_conversion": "signup_completed",
    "naming": {"properties": "^[a-z][a-z0-9_]*$"},
    "phases": [{"name": "join", "milestones": ["signup_completed"]}],
    "events": {
        "signup_completed": {
            "kind": "macro",
            "properties": {
                "email": {"type": "string", "pii": "hash", "max_length": 40, "pattern": "@"},
                "phone": {"type": "string", "pii": "drop"},
                "customer_no": {"type": "integer", "pii": "hash"},
                "tier": {"type": "string", "enum": ["free", "pro"]},
            },
        },
        "page_viewed": {"kind": "page"},
    },
}


def unique_email():
    return "jane.%s@example.com" % new_id()[:8]


def signup(**props):
    return make_event(name="signup_completed", props=props)


class PiiTest(harness.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        cls.plan_path = harness.write_plan(PII_PLAN)
        cls.daemon_config = {"plan": cls.plan_path, "pii_hash_key": PII_KEY, "log_level": "debug"}
        super().setUpClass()

    def props_of(self, events):
        rows = harness.event_rows(self.db, [e["event_id"] for e in events])
        return [rows[e["event_id"]]["props"] for e in events]

    def test_hashed_and_dropped(self):
        email, other = unique_email(), unique_email()
        phone = "+1 555 %s" % new_id()[:7]
        events = [signup(email=email, phone=phone, tier="pro", customer_no=48151623),
                  signup(email=email),
                  signup(email=other, phone=phone)]
        resp = self.post({"batch": events})
        self.assertAccepted(resp, 3)
        self.assertEqual(resp.body["results"], ["stored"] * 3)
        p = self.props_of(events)
        h = harness.pii_hash(email, PII_KEY)
        self.assertRegex(h, r"^[0-9a-f]{64}$")
        self.assertEqual(p[0], {"email": h, "tier": "pro", "customer_no": harness.pii_hash(48151623, PII_KEY)},
                         "email hashed, phone dropped, a number hashed as its JSON text")
        self.assertEqual(p[1]["email"], h, "same value, same hash")
        self.assertNotEqual(p[2]["email"], h, "another value, another hash")
        self.assertEqual(p[2], {"email": harness.pii_hash(other, PII_KEY)})
        for raw in (email, other, phone, "48151623"):
            self.assertEqual(harness.tables_containing(self.db, raw), {}, "%s stored somewhere" % raw)
            self.assertNotIn(raw, self.daemon.log(), "%s logged" % raw)

    def test_rejected_event_is_redacted(self):
        """Checks apply to the value as sent; the payload kept in
        rejected_events has the PII hashed or dropped all the same."""
        long_email = "a" * 30 + unique_email()          # over max_length 40
        email = unique_email()
        phone = "+1 555 %s" % new_id()[:7]
        events = [signup(email=long_email, phone=phone),
                  signup(email=email, phone=phone, tier="gold"),
                  signup(email="no-at-sign-" + new_id()[:6]),
                  signup(email=email, phone=phone)]
        resp = self.post({"batch": events})
        self.assertAccepted(resp, 1, [0, 1, 2])
        self.assertEqual(harness.answer_problems(resp), {0: [("too_long", "$.props.email")],
                                                         1: [("not_in_enum", "$.props.tier")],
                                                         2: [("pattern_mismatch", "$.props.email")]})
        rows = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual([r["event_index"] for r in rows], [0, 1, 2])
        self.assertEqual(rows[0]["payload"]["props"], {"email": harness.pii_hash(long_email, PII_KEY)})
        self.assertEqual(rows[1]["payload"]["props"], {"email": harness.pii_hash(email, PII_KEY), "tier": "gold"})
        self.assertEqual(sorted(rows[0]["redacted"]), ["email", "phone"])
        self.assertEqual(sorted(rows[1]["redacted"]), ["email", "phone"])
        self.assertEqual(rows[2]["redacted"], ["email"])
        for r, e in zip(rows, events):
            self.assertEqual({k: v for k, v in r["payload"].items() if k != "props"},
                             {k: v for k, v in e.items() if k != "props"}, "the rest as sent")
        for raw in (long_email, email, phone, events[2]["props"]["email"]):
            self.assertEqual(harness.tables_containing(self.db, raw), {}, "%s stored somewhere" % raw)

    def test_null_values(self):
        """A null PII value has nothing to hash: it is removed like a dropped one."""
        e = signup(email=None, phone=None, tier="free")
        self.assertAccepted(self.post(e), 1)
        self.assertEqual(self.props_of([e]), [{"tier": "free"}])

    def test_hash_changes_with_the_key(self):
        email = unique_email()
        e1 = signup(email=email)
        self.assertAccepted(self.post(e1), 1)
        for key in (OTHER_KEY, LONG_KEY):
            with self.subTest(key_length=len(key)):
                db = harness.fresh_database()
                d = harness.Daemon(db, plan=self.plan_path, pii_hash_key=key)
                try:
                    e2 = signup(email=email)
                    self.assertAccepted(d.post_events(e2), 1)
                    got = harness.event_rows(db, [e2["event_id"]])[e2["event_id"]]["props"]["email"]
                    self.assertEqual(got, harness.pii_hash(email, key))
                    self.assertNotEqual(got, self.props_of([e1])[0]["email"], "another key, another hash")
                    self.assertEqual(d.stop(), 0)
                finally:
                    d.kill()

    def test_refuses_to_start_without_the_key(self):
        d = harness.Daemon(NO_DB, wait=None, plan=self.plan_path)
        try:
            code = d.wait(20)
            self.assertIsNotNone(code, "milepost started with a hashing plan and no pii_hash_key")
            self.assertNotEqual(code, 0)
            self.assertIn("pii_hash_key", d.log())
        finally:
            d.kill()

    def test_short_key_refused(self):
        p = run_milepost(["serve", "--config", harness.write_config(NO_DB, plan=self.plan_path,
                                                                    pii_hash_key="too-short")], timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("pii_hash_key", p.stderr)

    def test_plan_without_pii_needs_no_key(self):
        plan = dict(PII_PLAN, events={"signup_completed": {"kind": "macro", "properties": {
            "phone": {"type": "string", "pii": "drop"}}}})
        d = harness.Daemon(harness.fresh_database(), plan=harness.write_plan(plan))
        try:
            e = signup(phone="+1 555 0100", tier="x")
            self.assertAccepted(d.post_events(e), 1)
            self.assertEqual(harness.event_rows(d.database_url, [e["event_id"]])[e["event_id"]]["props"],
                             {"tier": "x"})
            self.assertEqual(d.stop(), 0)
        finally:
            d.kill()


# --------------------------------------------------------------------------
# URL parameters

class UrlStripTest(harness.DaemonTestCase):

    CASES = [
        # (sent, stored)
        ("https://shop.example/a?email=jo%40example.com&utm_source=n&Token=abc&q=1#frag",
         "https://shop.example/a?utm_source=n&q=1#frag"),
        ("https://shop.example/reset?PASSWORD=PW{t}", "https://shop.example/reset"),
        ("https://shop.example/x?b=2&e%2Dmail=MAIL{t}&a=1&sid&c=3", "https://shop.example/x?b=2&a=1&c=3"),
        ("https://shop.example/cb?code=CODE{t}&state=s1&access_token=ATOK{t}&ApiKey=AKEY{t}",
         "https://shop.example/cb?state=s1"),
        # Fragments holding parameters are cleaned too (hash routes, OAuth).
        ("https://shop.example/#/route?token=FRAG{t}&step=2", "https://shop.example/#/route?step=2"),
        ("https://shop.example/cb#access_token=ATOK{t}&state=s", "https://shop.example/cb#state=s"),
        ("https://shop.example/x?emails=1&my_email=2&email_opt=3", "https://shop.example/x?emails=1&my_email=2&email_opt=3"),
        ("https://shop.example/x?", "https://shop.example/x?"),
        ("https://shop.example/x?gclid=G{t}&Phone=PHONE{t}", "https://shop.example/x?gclid=G{t}"),
        ("/relative/path?password=PW{t}&ok=1", "/relative/path?ok=1"),
    ]

    def test_default_params_stripped(self):
        t = new_id()[:8]
        events = []
        for sent, _ in self.CASES:
            events.append(make_event(url=sent.format(t=t), referrer=sent.format(t=t)))
        self.assertAccepted(self.post({"batch": events}), len(events))
        rows = harness.event_rows(self.db, [e["event_id"] for e in events])
        for e, (sent, stored) in zip(events, self.CASES):
            row = rows[e["event_id"]]
            self.assertEqual((row["url"], row["referrer"]), (stored.format(t=t),) * 2, "from %s" % sent)
        for secret in ("PW" + t, "MAIL" + t, "CODE" + t, "ATOK" + t, "AKEY" + t, "PHONE" + t, "FRAG" + t):
            self.assertEqual(harness.tables_containing(self.db, secret), {}, "%s stored somewhere" % secret)

    def test_rejected_event_context_reduced_to_consent(self):
        """A Segment context holds the sender's view of the visitor (ip,
        traits): a rejected event keeps only its consent."""
        t = new_id()[:8]
        ctx = {"ip": "198.51.100.%d" % (int(t, 16) % 250), "traits": {"email": "ctx%s@example.com" % t},
               "consent": {"categoryPreferences": {"analytics": True}}}
        resp = self.post(make_event(name="Bad", context=ctx))
        self.assertAccepted(resp, 0, [0])
        (row,) = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual(row["payload"]["context"], {"consent": {"categoryPreferences": {"analytics": True}}})
        self.assertEqual(harness.tables_containing(self.db, "ctx%s@example.com" % t), {})
        self.assertEqual(harness.tables_containing(self.db, ctx["ip"]), {})

    def test_rejected_event_url_stripped(self):
        t = new_id()[:8]
        e = make_event(name="Bad", url="https://shop.example/?token=tok%s&a=1" % t)
        resp = self.post(e)
        self.assertAccepted(resp, 0, [0])
        (row,) = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual(row["payload"]["url"], "https://shop.example/?a=1")
        self.assertEqual(harness.tables_containing(self.db, "tok" + t), {})

    def test_configured_params(self):
        d = harness.Daemon(harness.fresh_database(), url_strip_params=["foo", "Bar"])
        try:
            e = make_event(url="https://shop.example/?foo=1&email=x&BAR=2&baz=3&bar",
                           referrer="https://r.example/?FOO=1")
            self.assertAccepted(d.post_events(e), 1)
            row = harness.event_rows(d.database_url, [e["event_id"]])[e["event_id"]]
            self.assertEqual((row["url"], row["referrer"]),
                             ("https://shop.example/?email=x&baz=3", "https://r.example/"),
                             "the configured list replaces the default one")
            self.assertEqual(d.stop(), 0)
        finally:
            d.kill()


if __name__ == "__main__":
    harness.main()
