#!/usr/bin/env python3
"""People and sessions: identify calls and events carrying both ids link an
anonymous id to a user id (one person, merged when both were known),
placeholder ids are refused, a user's anonymous ids are capped, a device
already linked to one user is not linked to another; events without a
session id are cut into sessions by inactivity and by a newly announced
source, a client's session id is kept; person_milestones keeps the first
time each person reached each planned event, bots excluded, in whatever
order the events arrive."""

import secrets
from datetime import datetime, timedelta

import harness
from harness import psql, psql_value, rfc3339, ts_utc_sql, utc_text, utcnow

PLAN = harness.read_example_plan()
PII_KEY = "people-test-pii-key-0123456789ab"  # the example plan hashes search queries
CONSENT = {"analytics": True}

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

# Valid properties of the example plan's events used here.
PROPS = {
    "page_viewed": {"page_type": "home"},
    "product_viewed": {"product_id": "P-1001", "price": 89.9, "currency": "EUR"},
    "cart_added": {"product_id": "P-1001", "quantity": 1, "currency": "EUR"},
    "checkout_started": {"cart_id": "C-1", "item_count": 1, "cart_value": 89.9, "currency": "EUR"},
    "purchase_completed": {"order_id": "ORD-1", "revenue": 89.9, "currency": "EUR", "item_count": 1},
}

# The warning the daemon logs when it refuses to link ids.
REFUSED_LOG = r'"level":"warn","msg":"[^"]*identity link\(s\) refused'

PLACEHOLDER_USER_IDS = ["", "null", "undefined", "0", "None", " NULL ", "\tundefined ", "-1", "nil",
                        "NaN", "FALSE", "true", "Anonymous", "guest", "unknown", "N/A",
                        "[object Object]", "00000000-0000-0000-0000-000000000000"]


def uid(label):
    """A unique id, so that tests sharing a database do not meet."""
    return "%s-%s" % (label, secrets.token_hex(6))


def base_time(days_ago=1):
    """A past time with whole milliseconds (what the tests send and compare)."""
    t = utcnow() - timedelta(days=days_ago)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def event(name, anon=None, user=None, ts=None, **fields):
    """A planned event of the example plan with valid properties and consent."""
    ev = {"event_id": harness.new_id(), "name": name, "consent": CONSENT,
          "props": dict(PROPS[name]), "anonymous_id": anon, "user_id": user,
          "ts": rfc3339(ts) if ts is not None else None}
    ev.update(fields)
    return {k: v for k, v in ev.items() if v is not None}


def identify(user, anon=None, ts=None, **fields):
    ev = {"type": "identify", "event_id": harness.new_id(), "user_id": user, "anonymous_id": anon,
          "ts": rfc3339(ts) if ts is not None else None}
    ev.update(fields)
    return {k: v for k, v in ev.items() if v is not None}


def ids_of(events):
    return [e["event_id"] for e in events]


def ts_of(e):
    """The ts an event was sent with, as the tests read timestamps back."""
    return utc_text(datetime.fromisoformat(e["ts"].replace("Z", "+00:00")))


SESSION_COLUMNS = ("session_id", "person_id", "anonymous_id", "client_given", "started_at", "last_at",
                   "events", "landing_url", "landing_path", "referrer_host", "utm_source", "utm_medium",
                   "utm_campaign", "click_id_kind", "channel", "bot")

SESSION_SELECT = ("SELECT session_id, person_id, anonymous_id, client_given, %s, %s, events, landing_url,"
                  " landing_path, referrer_host, utm_source, utm_medium, utm_campaign, click_id_kind,"
                  " channel, bot FROM sessions" % (ts_utc_sql("started_at"), ts_utc_sql("last_at")))

EVENT_COLUMNS = ("event_id", "name", "kind", "anonymous_id", "user_id", "session_id", "person_id",
                 "person", "ts", "url", "channel", "bot", "props")

MILESTONE_COLUMNS = ("name", "first_at", "first_event_id", "first_session_id")


class PeopleCase(harness.DaemonTestCase):
    """Helpers to send events and read people, sessions and milestones."""

    plan_daemon_config = {}

    @classmethod
    def setUpClass(cls):
        cls.daemon_config = dict(cls.plan_daemon_config, plan=harness.write_plan(PLAN),
                                 pii_hash_key=PII_KEY)
        super().setUpClass()

    # -- sending

    def send(self, events, ua=CHROME, bot=False):
        """Posts events as one batch; every one must be stored (with bot, as
        a bot's: each with the bot_traffic warning)."""
        resp = self.post({"batch": events}, headers={"User-Agent": ua})
        self.assertAccepted(resp, len(events))
        self.assertEqual(resp.body["results"], ["stored"] * len(events), "%r" % (resp.body,))
        self.assertEqual([(w["index"], w["code"]) for w in resp.body.get("warnings", [])],
                         [(i, "bot_traffic") for i in range(len(events))] if bot else [], "%r" % (resp.body,))
        return resp

    def send_each(self, events, ua=CHROME):
        """Posts each event in a request of its own."""
        for e in events:
            self.send([e], ua=ua)

    # -- reading

    def person(self, kind, id_):
        """The person_id of an identity, or None when the id is unknown."""
        rows = psql(self.db, "SELECT person_id FROM identities WHERE site_id = 'shop'"
                             " AND kind = :'k' AND id = :'i'", k=kind, i=id_)
        return rows[0][0] if rows else None

    def anon_person(self, anon):
        return self.person("anonymous", anon)

    def user_person(self, user):
        return self.person("user", user)

    def identities_of_person(self, person_id):
        """{(kind, id)} of one person."""
        return {(r[0], r[1]) for r in psql(
            self.db, "SELECT kind, id FROM identities WHERE site_id = 'shop' AND person_id = :'p'",
            p=person_id)}

    def events(self, events):
        """{event_id: {column: value}} from events_people for these events."""
        sql = ("SELECT event_id, name, kind, anonymous_id, user_id, session_id, person_id, person, %s,"
               " url, channel, bot, props::text FROM events_people WHERE site_id = 'shop'"
               " AND event_id = ANY (:'ids'::uuid[])" % ts_utc_sql("ts"))
        out = {}
        for r in psql(self.db, sql, ids=harness.pg_array(ids_of(events))):
            self.assertNotIn(r[0], out, "event %s twice in events_people" % r[0])
            out[r[0]] = dict(zip(EVENT_COLUMNS, r))
        self.assertEqual(sorted(out), sorted(ids_of(events)), "events stored")
        return out

    def sessions_of_anon(self, anon):
        """The sessions of one device, oldest first, as dicts."""
        rows = psql(self.db, SESSION_SELECT + " WHERE site_id = 'shop' AND anonymous_id = :'a'"
                                              " ORDER BY started_at, session_id", a=anon)
        return [dict(zip(SESSION_COLUMNS, r)) for r in rows]

    def session(self, session_id):
        rows = psql(self.db, SESSION_SELECT + " WHERE site_id = 'shop' AND session_id = :'s'", s=session_id)
        self.assertEqual(len(rows), 1, "session %s: %r" % (session_id, rows))
        return dict(zip(SESSION_COLUMNS, rows[0]))

    def milestones(self, person_id):
        """{name: {column: value}} of one person's person_milestones (the
        columns of MILESTONE_COLUMNS the table has, times as utc_text)."""
        have = {r[0] for r in psql(self.db, "SELECT column_name FROM information_schema.columns"
                                            " WHERE table_name = 'person_milestones'")}
        cols = [c for c in MILESTONE_COLUMNS if c in have]
        rows = psql(self.db, "SELECT %s FROM person_milestones WHERE site_id = 'shop' AND person_id = :'p'"
                    % ", ".join(ts_utc_sql(c) if c.endswith("_at") else c for c in cols), p=person_id)
        return {r[0]: dict(zip(cols, r)) for r in rows}

    def merges(self, from_person):
        """into_person of the person_merges row of from_person, or None."""
        rows = psql(self.db, "SELECT into_person FROM person_merges WHERE site_id = 'shop'"
                             " AND from_person = :'p'", p=from_person)
        return rows[0][0] if rows else None

    def assertMilestone(self, got, first):
        """A person_milestones row: first_at the ts of event first (exact to
        the millisecond) and first_event_id its id."""
        self.assertIsNotNone(got, "no person_milestones row")
        self.assertEqual((got["first_at"], got["first_event_id"]), (ts_of(first), first["event_id"]),
                         "first time of %r" % (got,))

    def assertSplit(self, events, groups):
        """events.session_id cuts events into exactly these groups (lists of
        indexes), each session named after its first event (server sessions)
        and its row counting its events from its first to its last ts."""
        rows = self.events(events)
        got = {}
        for i, e in enumerate(events):
            got.setdefault(rows[e["event_id"]]["session_id"], []).append(i)
        self.assertEqual(sorted(got.values()), sorted(groups), "sessions of %r" % (got,))
        for group in groups:
            first = min((events[i] for i in group), key=ts_of)
            last = max((events[i] for i in group), key=ts_of)
            sid = rows[events[group[0]]["event_id"]]["session_id"]
            self.assertEqual(sid, first["event_id"], "a server session is named after its first event")
            s = self.session(sid)
            self.assertEqual((s["client_given"], s["started_at"], s["last_at"], int(s["events"])),
                             ("f", ts_of(first), ts_of(last), len(group)), "%r" % (s,))
        return rows


class PeopleTest(PeopleCase):
    """The example plan, default limits (30 minute sessions, 100 anonymous
    ids per user)."""

    # -- linking

    def test_anonymous_login_purchase_is_one_person(self):
        """A new visitor browses, logs in as a new user and buys through a
        server-side event that carries only the user id."""
        a, u = uid("anon"), uid("user")
        t0 = base_time()
        viewed = event("product_viewed", anon=a, ts=t0, url="https://shop.example/p/P-1001")
        login = identify(u, anon=a, ts=t0 + timedelta(minutes=2))
        bought = event("purchase_completed", user=u, ts=t0 + timedelta(minutes=6))
        self.send([viewed])
        first_person = self.anon_person(a)
        self.assertIsNotNone(first_person)
        self.send([login])
        self.send([bought])

        p = self.user_person(u)
        self.assertEqual(self.anon_person(a), p, "the device and the user are one person")
        self.assertEqual(p, first_person, "a new user joins the visitor's person")
        self.assertEqual(self.identities_of_person(p), {("anonymous", a), ("user", u)})

        rows = self.events([viewed, login, bought])
        self.assertEqual({r["person"] for r in rows.values()}, {p}, "%r" % (rows,))
        self.assertEqual({r["person_id"] for r in rows.values()}, {p})
        # The identify call is stored as such, with no properties.
        idr = rows[login["event_id"]]
        self.assertEqual((idr["name"], idr["kind"], idr["anonymous_id"], idr["user_id"]),
                         ("identify", "identify", a, u))
        self.assertIn(idr["props"], (None, "{}"))
        # One visit: the login and the purchase continue it.
        self.assertEqual({r["session_id"] for r in rows.values()}, {viewed["event_id"]})
        s = self.session(viewed["event_id"])
        self.assertEqual((s["person_id"], s["anonymous_id"], int(s["events"]), s["started_at"], s["last_at"]),
                         (p, a, 3, ts_of(viewed), ts_of(bought)))

        ms = self.milestones(p)
        self.assertEqual(set(ms), {"product_viewed", "purchase_completed"}, "identify is no milestone")
        self.assertMilestone(ms["product_viewed"], viewed)
        self.assertMilestone(ms["purchase_completed"], bought)
        self.assertEqual(ms["product_viewed"]["first_session_id"], viewed["event_id"])

    def test_returning_user_merges_the_visitor_into_the_user(self):
        """A user known from an earlier order browses anonymously on a new
        device, then logs in: the device's person is merged into the user's."""
        a, u = uid("anon"), uid("user")
        t0 = base_time()
        old_order = event("purchase_completed", user=u, ts=t0 - timedelta(days=2))
        viewed = event("product_viewed", anon=a, ts=t0, url="https://shop.example/p/P-1001")
        login = identify(u, anon=a, ts=t0 + timedelta(minutes=2))
        bought = event("purchase_completed", user=u, ts=t0 + timedelta(minutes=6))
        self.send([old_order])
        self.send([viewed])
        pu, pa = self.user_person(u), self.anon_person(a)
        self.assertNotEqual(pu, pa, "two people before the login")
        self.assertEqual(set(self.milestones(pa)), {"product_viewed"})
        self.send([login])
        self.send([bought])

        self.assertEqual((self.anon_person(a), self.user_person(u)), (pu, pu))
        self.assertEqual(self.merges(pa), pu, "person_merges row of the visitor")
        self.assertIsNone(self.merges(pu))
        rows = self.events([old_order, viewed, login, bought])
        self.assertEqual({r["person"] for r in rows.values()}, {pu}, "%r" % (rows,))
        # Stored events keep the person they had when stored.
        self.assertEqual(rows[viewed["event_id"]]["person_id"], pa)
        self.assertEqual(rows[login["event_id"]]["person_id"], pu)
        # The device's visit moved to the user.
        (s,) = self.sessions_of_anon(a)
        self.assertEqual((s["session_id"], s["person_id"]), (viewed["event_id"], pu))
        self.assertEqual(self.milestones(pa), {}, "the merged person keeps no milestones")
        ms = self.milestones(pu)
        self.assertEqual(set(ms), {"product_viewed", "purchase_completed"})
        self.assertMilestone(ms["product_viewed"], viewed)
        self.assertMilestone(ms["purchase_completed"], old_order)

    def test_event_with_both_ids_links_them(self):
        """Not only identify calls: any stored event with an anonymous and a
        user id links them."""
        a, u = uid("anon"), uid("user")
        t0 = base_time()
        viewed = event("product_viewed", anon=a, ts=t0)
        added = event("cart_added", anon=a, user=u, ts=t0 + timedelta(minutes=1))
        self.send([viewed])
        self.send([added])
        p = self.anon_person(a)
        self.assertEqual(self.user_person(u), p)
        self.assertEqual(set(self.milestones(p)), {"product_viewed", "cart_added"})

    def test_two_devices_of_one_user(self):
        a1, a2, u = uid("phone"), uid("laptop"), uid("user")
        t0 = base_time()
        t1 = t0 + timedelta(hours=1)
        phone = [event("product_viewed", anon=a1, ts=t0, url="https://shop.example/p/P-1001"),
                 identify(u, anon=a1, ts=t0 + timedelta(minutes=2))]
        laptop = [event("product_viewed", anon=a2, ts=t1, url="https://shop.example/p/P-1001"),
                  identify(u, anon=a2, ts=t1 + timedelta(minutes=2))]
        self.send([phone[0]])
        self.send([laptop[0]])
        p1, p2 = self.anon_person(a1), self.anon_person(a2)
        self.assertNotEqual(p1, p2)
        self.send([phone[1]])
        self.send([laptop[1]])

        p = self.user_person(u)
        self.assertEqual((self.anon_person(a1), self.anon_person(a2)), (p, p))
        self.assertEqual(self.identities_of_person(p), {("anonymous", a1), ("anonymous", a2), ("user", u)})
        rows = self.events(phone + laptop)
        self.assertEqual({r["person"] for r in rows.values()}, {p})
        s1, s2 = self.sessions_of_anon(a1), self.sessions_of_anon(a2)
        self.assertEqual([(s["session_id"], s["person_id"], int(s["events"])) for s in s1],
                         [(phone[0]["event_id"], p, 2)])
        self.assertEqual([(s["session_id"], s["person_id"], int(s["events"])) for s in s2],
                         [(laptop[0]["event_id"], p, 2)])
        self.assertEqual(psql_value(self.db, "SELECT count(*) FROM sessions WHERE site_id = 'shop'"
                                             " AND person_id = :'p'", p=p), "2")
        # The second device's person was merged; the milestone counts both.
        self.assertEqual({self.merges(p1), self.merges(p2)} - {None}, {p})
        self.assertMilestone(self.milestones(p).get("product_viewed"), phone[0])

    def test_shared_device_is_not_linked_to_a_second_user(self):
        """A device used by U1, then by U2 (a new user), then by U3 (known):
        it stays U1's; the later identify calls are still stored, as U2's
        and U3's."""
        a, u1, u2, u3 = uid("kiosk"), uid("user1"), uid("user2"), uid("user3")
        t0 = base_time()
        u3_order = event("purchase_completed", user=u3, ts=t0 - timedelta(hours=5))
        first = identify(u1, anon=a, ts=t0)
        browse = event("product_viewed", anon=a, ts=t0 + timedelta(minutes=1))
        second = identify(u2, anon=a, ts=t0 + timedelta(minutes=10))
        u2_later = event("cart_added", user=u2, ts=t0 + timedelta(minutes=12))
        third = identify(u3, anon=a, ts=t0 + timedelta(minutes=20))
        self.send([u3_order])
        self.send([first])
        self.send([browse])
        mark = self.daemon.log_mark()
        self.send([second])
        self.daemon.wait_for_log(REFUSED_LOG, since=mark)
        self.send([u2_later])
        self.send([third])

        p1, p2, p3 = self.user_person(u1), self.user_person(u2), self.user_person(u3)
        self.assertEqual(len({p1, p2, p3}), 3, "three people")
        self.assertEqual(self.anon_person(a), p1, "the device stays with the first user")
        self.assertEqual(self.identities_of_person(p1), {("anonymous", a), ("user", u1)})
        self.assertEqual(self.identities_of_person(p2), {("user", u2)})
        self.assertEqual(self.identities_of_person(p3), {("user", u3)})
        self.assertIsNone(self.merges(p1))
        self.assertIsNone(self.merges(p2))
        rows = self.events([first, browse, second, u2_later, third])
        got = [(rows[e["event_id"]]["person_id"], rows[e["event_id"]]["person"])
               for e in (first, browse, second, u2_later, third)]
        self.assertEqual(got, [(p1, p1), (p1, p1), (p2, p2), (p2, p2), (p3, p3)])
        self.assertEqual(set(self.milestones(p1)), {"product_viewed"})
        self.assertEqual(set(self.milestones(p2)), {"cart_added"})

    # -- placeholder ids

    def test_placeholder_ids_are_refused(self):
        t0 = base_time()
        real = [uid("null"), "0" + secrets.token_hex(4), "user 0 " + secrets.token_hex(4)]
        batch = [event("product_viewed", anon=uid("anon"), user=v, ts=t0) for v in PLACEHOLDER_USER_IDS]
        batch += [
            identify("null", anon=uid("anon"), ts=t0),
            identify("Undefined", ts=t0),
            identify(uid("user"), anon="undefined", ts=t0),
            event("product_viewed", anon="null", ts=t0),
            event("product_viewed", anon=" Undefined", ts=t0),
            event("product_viewed", anon=uid("anon"), session_id="NULL", ts=t0),
            event("product_viewed", anon=uid("anon"), session_id="undefined", ts=t0),
        ]
        expected = {i: [("placeholder_id", "$.user_id")] for i in range(len(PLACEHOLDER_USER_IDS) + 2)}
        n = len(PLACEHOLDER_USER_IDS) + 2
        expected.update({n: [("placeholder_id", "$.anonymous_id")], n + 1: [("placeholder_id", "$.anonymous_id")],
                         n + 2: [("placeholder_id", "$.anonymous_id")], n + 3: [("placeholder_id", "$.session_id")],
                         n + 4: [("placeholder_id", "$.session_id")]})
        # Real ids that only look alike, and empty anonymous and session ids
        # (absent, not refused).
        good = [event("product_viewed", anon=uid("anon"), user=v, ts=t0) for v in real]
        empty_anon_user = uid("user")
        good += [event("product_viewed", anon="", user=empty_anon_user, ts=t0),
                 event("product_viewed", anon=uid("anon"), session_id="", ts=t0)]
        resp = self.post({"batch": batch + good}, headers={"User-Agent": CHROME})
        self.assertAccepted(resp, len(good), range(len(batch)))
        self.assertEqual(harness.answer_problems(resp), expected, "%r" % (resp.body,))
        self.assertEqual(resp.body["results"], ["rejected"] * len(batch) + ["stored"] * len(good))

        self.assertEqual(harness.event_id_counts(self.db, ids_of(batch)), {}, "refused events stored")
        rej = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual([r["event_index"] for r in rej], list(range(len(batch))))
        for r in rej:
            self.assertEqual(r["error_codes"], ["placeholder_id"], "%r" % (r,))
            self.assertEqual([(e["code"], e["path"]) for e in r["errors"]], expected[r["event_index"]])
        placeholders = sorted({v.strip().lower() for v in PLACEHOLDER_USER_IDS})
        self.assertEqual(psql(self.db, "SELECT kind, id FROM identities WHERE lower(btrim(id, E' \\t'))"
                                       " = ANY (:'p'::text[])", p=harness.pg_array(placeholders)), [])

        rows = self.events(good)
        for e, v in zip(good, real):
            self.assertEqual(rows[e["event_id"]]["user_id"], v)
            self.assertEqual(self.user_person(v), self.anon_person(e["anonymous_id"]))
        r = rows[good[-2]["event_id"]]
        self.assertEqual((r["anonymous_id"], r["user_id"], r["person"]),
                         (None, empty_anon_user, self.user_person(empty_anon_user)))
        r = rows[good[-1]["event_id"]]
        self.assertEqual(r["session_id"], good[-1]["event_id"], "an empty session id is absent")

    def test_identify_needs_a_user_id(self):
        e = identify(None, anon=uid("anon"), ts=base_time())
        resp = self.post(e)
        self.assertAccepted(resp, 0, [0])
        self.assertEqual([p for _, p in harness.answer_problems(resp)[0]], ["$.user_id"], "%r" % (resp.body,))
        self.assertEqual(harness.event_id_counts(self.db, [e["event_id"]]), {})
        self.assertIsNone(self.anon_person(e["anonymous_id"]))

    # -- sessions

    def test_sessions_split_by_inactivity(self):
        t = base_time()
        for how in ("one batch", "one request each"):
            with self.subTest(how):
                a = uid("anon")
                events = [event("page_viewed", anon=a, ts=t, url="https://shop.example/"),
                          event("product_viewed", anon=a, ts=t + timedelta(minutes=10)),
                          event("cart_added", anon=a, ts=t + timedelta(minutes=45))]
                if how == "one batch":
                    self.send(events)
                else:
                    self.send_each(events)
                rows = self.assertSplit(events, [[0, 1], [2]])
                p = self.anon_person(a)
                self.assertEqual([(s["session_id"], s["person_id"], s["landing_url"], s["landing_path"])
                                  for s in self.sessions_of_anon(a)],
                                 [(events[0]["event_id"], p, rows[events[0]["event_id"]]["url"], "/"),
                                  (events[2]["event_id"], p, None, None)])

    def test_session_timeout_boundary(self):
        """More than 30 minutes of inactivity ends a visit; exactly 30 does not."""
        t = base_time()
        a = uid("anon")
        events = [event("page_viewed", anon=a, ts=t),
                  event("page_viewed", anon=a, ts=t + timedelta(minutes=30)),
                  event("page_viewed", anon=a, ts=t + timedelta(minutes=60, milliseconds=1))]
        self.send_each(events)
        self.assertSplit(events, [[0, 1], [2]])

    def split_by_source(self, a, t, send):
        url = "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=%s"
        events = [
            event("page_viewed", anon=a, ts=t, url=url % "a"),
            # Announces nothing: no campaign, no referrer or an internal one.
            event("product_viewed", anon=a, ts=t + timedelta(seconds=40), url="https://shop.example/p/P-1001"),
            event("cart_added", anon=a, ts=t + timedelta(seconds=80), url="https://shop.example/cart",
                  referrer="https://shop.example/p/P-1001"),
            # A new campaign.
            event("page_viewed", anon=a, ts=t + timedelta(seconds=120), url=url % "b"),
            # The same campaign again continues it.
            event("product_viewed", anon=a, ts=t + timedelta(seconds=150), url=url % "b"),
            # An external referrer.
            event("page_viewed", anon=a, ts=t + timedelta(seconds=200), url="https://shop.example/",
                  referrer="https://www.bing.com/"),
            event("product_viewed", anon=a, ts=t + timedelta(seconds=230), url="https://shop.example/p/P-2",
                  referrer="https://shop.example/"),
        ]
        send(events)
        rows = self.assertSplit(events, [[0, 1, 2], [3, 4], [5, 6]])
        sessions = self.sessions_of_anon(a)
        got = [(s["session_id"], s["landing_path"], s["utm_source"], s["utm_medium"], s["utm_campaign"],
                s["referrer_host"], s["channel"]) for s in sessions]
        ch = lambda i: rows[events[i]["event_id"]]["channel"]  # noqa: E731
        self.assertEqual(got, [
            (events[0]["event_id"], "/", "google", "cpc", "a", None, ch(0)),
            (events[3]["event_id"], "/", "google", "cpc", "b", None, ch(3)),
            (events[5]["event_id"], "/", None, None, None, "bing.com", ch(5)),
        ])
        self.assertEqual((ch(0), ch(5)), ("Paid Search", "Organic Search"))

    def test_sessions_split_by_new_source(self):
        t = base_time()
        self.split_by_source(uid("anon"), t, self.send)
        self.split_by_source(uid("anon"), t, self.send_each)

    def test_client_session_id_is_kept(self):
        a, sid = uid("anon"), uid("s-abc")
        t = base_time()
        events = [event("page_viewed", anon=a, ts=t, session_id=sid, url="https://shop.example/welcome"),
                  event("product_viewed", anon=a, ts=t + timedelta(minutes=45), session_id=sid),
                  event("cart_added", anon=a, ts=t + timedelta(minutes=46), session_id=sid,
                        url="https://shop.example/?utm_source=google&utm_campaign=x")]
        self.send([events[0]])
        self.send(events[1:])
        rows = self.events(events)
        self.assertEqual({r["session_id"] for r in rows.values()}, {sid})
        s = self.session(sid)
        self.assertEqual((s["client_given"], s["person_id"], s["anonymous_id"], s["started_at"], s["last_at"],
                          int(s["events"]), s["landing_path"]),
                         ("t", self.anon_person(a), a, ts_of(events[0]), ts_of(events[2]), 3, "/welcome"))
        self.assertEqual([x["session_id"] for x in self.sessions_of_anon(a)], [sid])

    def test_ids_with_array_syntax_round_trip(self):
        """Sessions and ids reach PostgreSQL as array literals: quotes,
        backslashes, commas, braces, spaces and the word NULL in them are
        data, not syntax."""
        tricky = '{"a\\b", c} NULL \u00e9'
        a, sid = uid("anon " + tricky), uid("sess " + tricky)
        t = base_time()
        events = [event("page_viewed", anon=a, ts=t, session_id=sid,
                        url="https://shop.example/p?utm_source=%22q%22%2C%7Bx%7D"),
                  event("product_viewed", anon=a, ts=t + timedelta(minutes=1), session_id=sid)]
        self.send([events[0]])
        self.send([events[1]])
        rows = self.events(events)
        self.assertEqual({r["session_id"] for r in rows.values()}, {sid})
        s = self.session(sid)
        self.assertEqual((s["anonymous_id"], s["person_id"], int(s["events"]), s["utm_source"]),
                         (a, self.anon_person(a), 2, '"q",{x}'))

    # -- milestones

    def test_bots_are_stored_but_not_counted(self):
        bot_anon, human_anon = uid("bot"), uid("human")
        t = base_time()
        bot = event("product_viewed", anon=bot_anon, ts=t)
        human = event("product_viewed", anon=human_anon, ts=t)
        self.send([bot], ua=GOOGLEBOT, bot=True)
        self.send([human])
        rows = self.events([bot, human])
        self.assertEqual((rows[bot["event_id"]]["bot"], rows[human["event_id"]]["bot"]), ("t", "f"))
        self.assertEqual([(s["session_id"], s["bot"]) for s in self.sessions_of_anon(bot_anon)],
                         [(bot["event_id"], "t")])
        self.assertEqual([(s["session_id"], s["bot"]) for s in self.sessions_of_anon(human_anon)],
                         [(human["event_id"], "f")])
        bot_person = self.anon_person(bot_anon)
        self.assertIsNotNone(bot_person)
        self.assertEqual(self.milestones(bot_person), {})
        self.assertMilestone(self.milestones(self.anon_person(human_anon)).get("product_viewed"), human)

    def test_events_out_of_order(self):
        """A purchase path whose requests arrive latest first."""
        a, u = uid("anon"), uid("user")
        t = base_time()
        m = lambda n: t + timedelta(minutes=n)  # noqa: E731
        landing = "https://shop.example/sale/jackets?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
        path = [
            event("product_viewed", anon=a, ts=m(0), url=landing),
            event("product_viewed", anon=a, ts=m(1), url="https://shop.example/p/P-1001"),
            event("cart_added", anon=a, ts=m(2), url="https://shop.example/p/P-1001"),
            event("product_viewed", anon=a, ts=m(3), url="https://shop.example/p/P-2002"),
            event("cart_added", anon=a, user=u, ts=m(4), url="https://shop.example/p/P-2002"),
            event("purchase_completed", anon=a, user=u, ts=m(6), url="https://shop.example/checkout/done"),
        ]
        for e in reversed(path):
            self.send([e])
        p = self.anon_person(a)
        self.assertEqual(self.user_person(u), p)
        ms = self.milestones(p)
        self.assertEqual(set(ms), {"product_viewed", "cart_added", "purchase_completed"})
        self.assertMilestone(ms["product_viewed"], path[0])
        self.assertMilestone(ms["cart_added"], path[2])
        self.assertMilestone(ms["purchase_completed"], path[5])

        rows = self.events(path)
        sids = {r["session_id"] for r in rows.values()}
        self.assertEqual(len(sids), 1, "one visit: %r" % (sids,))
        self.assertEqual(ms["product_viewed"]["first_session_id"], next(iter(sids)))
        (s,) = self.sessions_of_anon(a)
        self.assertEqual((s["person_id"], s["started_at"], s["last_at"], int(s["events"])),
                         (p, ts_of(path[0]), ts_of(path[5]), len(path)))
        self.assertEqual((s["landing_url"], s["landing_path"], s["utm_source"], s["utm_medium"],
                          s["utm_campaign"], s["channel"]),
                         (rows[path[0]["event_id"]]["url"], "/sale/jackets", "newsletter", "email", "spring",
                          rows[path[0]["event_id"]]["channel"]))


    def test_merge_keeps_the_earliest_milestone(self):
        """The device's product_viewed at t0 arrives after the user's at t1 >
        t0; the login then merges them: first_at t0, from the device's event."""
        a, u = uid("anon"), uid("user")
        t0 = base_time()
        t1 = t0 + timedelta(hours=2)
        by_user = event("product_viewed", user=u, ts=t1)
        by_device = event("product_viewed", anon=a, ts=t0)
        login = identify(u, anon=a, ts=t1 + timedelta(minutes=5))
        self.send([by_user])
        self.send([by_device])
        pu, pa = self.user_person(u), self.anon_person(a)
        self.assertNotEqual(pu, pa)
        self.assertMilestone(self.milestones(pu).get("product_viewed"), by_user)
        self.assertMilestone(self.milestones(pa).get("product_viewed"), by_device)
        self.send([login])
        self.assertEqual(self.anon_person(a), pu)
        self.assertEqual(self.merges(pa), pu)
        self.assertEqual(self.milestones(pa), {})
        ms = self.milestones(pu)
        self.assertEqual(set(ms), {"product_viewed"})
        self.assertMilestone(ms["product_viewed"], by_device)
        self.assertEqual(ms["product_viewed"]["first_session_id"], by_device["event_id"])


class CappedPeopleTest(PeopleCase):
    """max_anonymous_ids_per_user 2, 5 minute sessions."""

    plan_daemon_config = {"max_anonymous_ids_per_user": 2, "session_timeout_min": 5}

    def test_anonymous_ids_per_user_are_capped(self):
        u = uid("user")
        anons = [uid("anon%d" % i) for i in range(3)]
        t0 = base_time()
        browse = [event("product_viewed", anon=x, ts=t0 + timedelta(minutes=i)) for i, x in enumerate(anons)]
        logins = [identify(u, anon=x, ts=t0 + timedelta(minutes=10 + i)) for i, x in enumerate(anons)]
        self.send(browse)
        before = [self.anon_person(x) for x in anons]
        self.assertEqual(len(set(before)), 3)
        self.send([logins[0]])
        self.send([logins[1]])
        mark = self.daemon.log_mark()
        resp = self.send([logins[2]])
        self.assertEqual(resp.body.get("rejected", []), [], "a refused link is no error to the client")
        self.daemon.wait_for_log(REFUSED_LOG, since=mark)
        # A device never seen before, identifying directly: refused too.
        a4 = uid("anon3")
        late = identify(u, anon=a4, ts=t0 + timedelta(minutes=20))
        self.send([late])

        p = self.user_person(u)
        self.assertEqual([self.anon_person(x) for x in anons], [p, p, before[2]])
        self.assertNotEqual(before[2], p)
        p4 = self.anon_person(a4)
        self.assertIsNotNone(p4)
        self.assertNotIn(p4, (p, before[2]))
        self.assertEqual(self.identities_of_person(p), {("anonymous", anons[0]), ("anonymous", anons[1]),
                                                        ("user", u)})
        self.assertEqual(self.identities_of_person(before[2]), {("anonymous", anons[2])})
        # The refused identify calls are stored all the same, as the user's.
        rows = self.events(logins + [late])
        self.assertEqual([(rows[e["event_id"]]["user_id"], rows[e["event_id"]]["person"]) for e in logins + [late]],
                         [(u, p)] * 4)
        self.assertMilestone(self.milestones(p).get("product_viewed"), browse[0])
        self.assertMilestone(self.milestones(before[2]).get("product_viewed"), browse[2])

    def test_session_timeout_setting(self):
        a = uid("anon")
        t = base_time()
        events = [event("page_viewed", anon=a, ts=t),
                  event("page_viewed", anon=a, ts=t + timedelta(minutes=4, seconds=59)),
                  event("page_viewed", anon=a, ts=t + timedelta(minutes=10, seconds=30))]
        self.send(events)
        self.assertSplit(events, [[0, 1], [2]])


if __name__ == "__main__":
    harness.main()
