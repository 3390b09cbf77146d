"""The query index and PostgreSQL give the same answers: a differential test.

A random shop is sent through the daemon's ingest API, so that people,
visits and merges are what the real writer makes of it: people with one to
three devices, user ids logged in on several of them (merges), a device
shared by two users, identify calls sent late and batches out of order,
bots, events without consent (stored without identifiers), visits split by
inactivity and by a new campaign, and steps placed exactly on window and
range edges. Then several hundred random queries over every parameter are
asked with engine=sql and with engine=index, and the answers compared
field by field (as_of and engine aside). Last, more events, a merge and an
erasure arrive, and the next answers must agree again at once: the index
catches up before it answers.

The seed is fixed; MILEPOST_DIFF_SEED=random (or a number) picks another,
printed as a TAP comment so that a failure can be replayed."""

import json
import os
import random
import secrets
import sys
from datetime import timedelta

import harness
from admin_api import api_call, erase, key_entry, new_api_key, wait_for_maintenance
from harness import rfc3339, utcnow

PLAN = harness.read_example_plan()
READ = new_api_key("rk_agree")
ADMIN = new_api_key("ak_agree")
SEED_TEXT = os.environ.get("MILEPOST_DIFF_SEED", "20261207")
SEED = secrets.randbelow(10 ** 9) if SEED_TEXT == "random" else int(SEED_TEXT)
QUERIES = int(os.environ.get("MILEPOST_DIFF_QUERIES", "300"))
PEOPLE = 160

AGENTS = {
    "desktop": ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/126.0.0.0 Safari/537.36"),
    "iphone": ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"),
    "android": ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/126.0.0.0 Mobile Safari/537.36"),
    "firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "bot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
}
# Where a visit comes from: (landing URL query, referrer).
SOURCES = [
    ("", None),
    ("?utm_source=news&utm_medium=email&utm_campaign=nov", None),
    ("?utm_source=news&utm_medium=email&utm_campaign=dec", None),
    ("?utm_source=google&utm_medium=cpc&utm_campaign=shoes", None),
    ("", "https://www.google.com/"),
    ("", "https://www.facebook.com/"),
    ("", "https://blog.example.org/post"),
]
PATHS = ["/", "/p/1", "/c/shoes", "/blog/1"]
PROPS = {
    "search_performed": {"query": "shoes"},
    "product_viewed": {"product_id": "P-1"},
    "cart_added": {"product_id": "P-1", "quantity": 1},
    "checkout_started": {"cart_id": "C-1", "item_count": 1, "cart_value": 20.0,
                         "currency": "EUR"},
    "purchase_completed": {"order_id": "O-1", "revenue": 20.0, "currency": "EUR",
                           "item_count": 1},
    "newsletter_subscribed": {"email": "x@example.com"},
    "wishlist_added": {"product_id": "P-1"},
    "cart_viewed": {},
    "account_created": {"method": "email"},
}
FUNNEL = ["search_performed", "product_viewed", "cart_added", "cart_viewed",
          "checkout_started", "purchase_completed"]
OTHERS = ["newsletter_subscribed", "wishlist_added", "account_created"]
WINDOWS = {"1h": 3600, "1d": 86400, "3d": 3 * 86400}
DIMS = ["channel", "utm_source", "utm_medium", "utm_campaign", "device", "browser",
        "landing_path"]


def diag(text):
    for line in str(text).splitlines():
        print("# " + line)
    sys.stdout.flush()


class Shop:
    """The random data set: a list of batches (each a list of events with the
    User-Agent to send them with), and the edges queries are cut at."""

    def __init__(self, rng, t0, run):
        self.rng, self.t0, self.run = rng, t0, run
        self.batches, self.late = [], []
        # Range edges: whole hours around the middle of the data.
        self.edges = [t0 + timedelta(hours=h) for h in (-72, -48, -24, -6, 0, 6, 24, 48, 72)]

    def ev(self, name, at, device, user=None, consent=True, **fields):
        e = {"event_id": harness.new_id(), "name": name, "ts": rfc3339(at)}
        if name in PROPS:
            e["props"] = dict(PROPS[name])
        if consent:
            e["consent"] = {"analytics": True}
        if device:
            e["anonymous_id"] = "%s-%s" % (device, self.run)
        if user:
            e["user_id"] = "%s-%s" % (user, self.run)
        e.update(fields)
        return e

    def identify(self, at, device, user):
        return {"type": "identify", "event_id": harness.new_id(), "ts": rfc3339(at),
                "anonymous_id": "%s-%s" % (device, self.run),
                "user_id": "%s-%s" % (user, self.run), "consent": {"analytics": True}}

    def visit(self, device, agent, start, user, logs_in):
        """One visit's events from start; the user (if any) logs in during it."""
        rng = self.rng
        query, referrer = rng.choice(SOURCES)
        url = "https://shop.example%s%s" % (rng.choice(PATHS), query)
        page = self.ev("page_viewed", start, device, url=url,
                       **({"referrer": referrer} if referrer else {}))
        events, t, logged_in = [page], start, False
        entry = None
        for name in FUNNEL:
            if rng.random() < 0.3:
                continue
            # Mostly short gaps; sometimes past the session timeout; sometimes
            # exactly a window's length after the first step.
            r = rng.random()
            if entry is not None and r < 0.12:
                t = entry + timedelta(seconds=rng.choice(list(WINDOWS.values())))
            elif entry is not None and r < 0.16:
                t = entry + timedelta(seconds=rng.choice(list(WINDOWS.values())) + 1)
            elif r < 0.25:
                t = t + timedelta(minutes=rng.randint(31, 300))
            else:
                t = t + timedelta(seconds=rng.randint(1, 1500))
            if rng.random() < 0.05:
                t = rng.choice(self.edges)  # on a range edge
            if user and logs_in and not logged_in and rng.random() < 0.4:
                logged_in = True
                ident = self.identify(t, device, user)
                (self.late if rng.random() < 0.5 else events).append((ident, agent))
            extra = {}
            if rng.random() < 0.08:  # a new campaign mid-visit: a new session
                extra["url"] = "https://shop.example/p/2?utm_source=news&utm_medium=email" \
                               "&utm_campaign=flash"
            consent = rng.random() > 0.05
            events.append(self.ev(name, t, device, user if logged_in else None, consent,
                                  **extra))
            entry = entry or t
            if rng.random() < 0.3:
                t = t + timedelta(seconds=rng.randint(1, 600))
                events.append(self.ev(rng.choice(OTHERS), t, device,
                                      user if logged_in else None))
            if rng.random() < 0.15:  # the same step again, later
                events.append(self.ev(name, t + timedelta(seconds=rng.randint(1, 7200)),
                                      device, user if logged_in else None))
        return [(e, agent) if not isinstance(e, tuple) else e for e in events]

    def build(self):
        rng = self.rng
        users_of_device = {}
        for p in range(PEOPLE):
            user = "u%d" % p if rng.random() < 0.5 else None
            devices = ["d%d-%d" % (p, k) for k in range(rng.choice([1, 1, 1, 2, 2, 3]))]
            for device in devices:
                agent = AGENTS["bot"] if rng.random() < 0.05 else \
                    AGENTS[rng.choice(["desktop", "iphone", "android", "firefox"])]
                users_of_device[device] = user
                events = []
                for _ in range(rng.choice([1, 1, 2, 3])):
                    start = self.t0 + timedelta(seconds=rng.randint(-3 * 86400, 3 * 86400))
                    events += self.visit(device, agent, start, user, user is not None)
                self.split(events)
        # Shared computers: another user logs in on a device already linked.
        for device in rng.sample(sorted(users_of_device), 6):
            other = "u%d" % rng.randrange(PEOPLE)
            start = self.t0 + timedelta(seconds=rng.randint(-3 * 86400, 3 * 86400))
            self.split([(self.identify(start, device, other), AGENTS["desktop"]),
                        (self.ev("cart_added", start + timedelta(minutes=1), device, other),
                         AGENTS["desktop"]),
                        (self.ev("purchase_completed", start + timedelta(minutes=2), device,
                                 other), AGENTS["desktop"])])
        rng.shuffle(self.batches)
        # Late identify calls: linking after the events they link.
        self.batches += [[x] for x in self.late]

    def split(self, events):
        """A device's events as one to three batches, each of one agent."""
        rng = self.rng
        rng.shuffle(events) if rng.random() < 0.2 else None
        cut = sorted(rng.sample(range(1, len(events)), min(len(events) - 1,
                                                           rng.randint(0, 2))))
        for a, b in zip([0] + cut, cut + [len(events)]):
            part = events[a:b]
            by_agent = {}
            for e, agent in part:
                by_agent.setdefault(agent, []).append(e)
            for agent, evs in by_agent.items():
                self.batches.append([(e, agent) for e in evs])


def random_steps(rng):
    names = FUNNEL + OTHERS
    n = rng.choice([2, 2, 3, 3, 4])
    steps = []
    for _ in range(n):
        if rng.random() < 0.15:
            steps.append("|".join(rng.sample(names, 2)))
        else:
            steps.append(rng.choice(FUNNEL[:5] if rng.random() < 0.8 else names))
    return ",".join(steps)


def random_funnel(rng, shop):
    lo, hi = sorted(rng.sample(range(len(shop.edges)), 2))
    q = {"site": "shop", "steps": random_steps(rng), "from": rfc3339(shop.edges[lo]),
         "to": rfc3339(shop.edges[hi]), "window": rng.choice(list(WINDOWS))}
    if rng.random() < 0.5:
        q["order"] = rng.choice(["ordered", "strict", "any"])
    if rng.random() < 0.25:
        q["unit"] = "sessions"
    if rng.random() < 0.2:
        q["exclude"] = ",".join(rng.sample(OTHERS + ["cart_viewed"], rng.choice([1, 2])))
    r = rng.random()
    if r < 0.45:
        q["breakdown"] = rng.choice(DIMS)
        if rng.random() < 0.5:
            q["top"] = str(rng.randint(1, 4))
    elif r < 0.6:
        q["cohort"] = rng.choice(["week", "month"])
    if rng.random() < 0.2:
        q["filter"] = rng.choice(["channel=Direct", "channel=Email", "device=mobile",
                                  "device=desktop", "browser=Chrome", "utm_source=news",
                                  "channel=Organic Search,device=desktop",
                                  "landing_path=/p/1", "channel=Nowhere"])
    return q


def random_milestones(rng, shop):
    lo, hi = sorted(rng.sample(range(len(shop.edges)), 2))
    q = {"site": "shop", "from": rfc3339(shop.edges[lo]), "to": rfc3339(shop.edges[hi]),
         "interval": rng.choice(["day", "week", "month"])}
    if rng.random() < 0.3:
        q["to"] = rfc3339(utcnow() + timedelta(days=1))  # periods not over yet
    if rng.random() < 0.5:
        q["names"] = ",".join(rng.sample(FUNNEL + OTHERS + ["page_viewed"], rng.randint(1, 4)))
    return q


def random_signals(rng, shop):
    lo, hi = sorted(rng.sample(range(len(shop.edges)), 2))
    q = {"site": "shop", "from": rfc3339(shop.edges[lo]), "to": rfc3339(shop.edges[hi]),
         "window": rng.choice(list(WINDOWS))}
    if rng.random() < 0.3:
        q["conversion"] = rng.choice(["checkout_started", "cart_added"])
    return q


def random_attribution(rng, shop):
    lo, hi = sorted(rng.sample(range(len(shop.edges)), 2))
    q = {"site": "shop", "from": rfc3339(shop.edges[lo]), "to": rfc3339(shop.edges[hi]),
         "dimension": rng.choice(["channel", "utm_source", "utm_medium", "utm_campaign",
                                  "source_medium", "landing_path"])}
    if rng.random() < 0.5:
        q["lookback"] = rng.choice(["1d", "2d", "7d", "30d"])
    if rng.random() < 0.3:
        q[rng.choice(["lookback.email", "lookback.organic_search", "lookback.direct"])] = \
            rng.choice(["1h", "1d", "3d"])
    if rng.random() < 0.3:
        q["models"] = ",".join(rng.sample(["first_touch", "last_touch", "last_non_direct",
                                           "linear", "time_decay", "position_based",
                                           "data_driven"], rng.randint(1, 3)))
    if rng.random() < 0.2:
        q["half_life"] = rng.choice(["1d", "2d"])
    if rng.random() < 0.2:
        q["position"] = rng.choice(["30,40,30", "50,0,50"])
    return q


def differences(a, b, path="$", tolerance=0.0):
    """Where two answers differ, as JSON paths. Floats must be equal (the
    engines compute the same doubles), or with a tolerance within it (the
    order attribution adds credits in may differ in the last bits)."""
    if isinstance(a, float) and isinstance(b, (int, float)) or \
            isinstance(b, float) and isinstance(a, (int, float)):
        return [] if abs(a - b) <= tolerance else ["%s: %r vs %r" % (path, a, b)]
    if type(a) is not type(b):
        return ["%s: %r vs %r" % (path, a, b)]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k in ("as_of", "engine") and path == "$":
                continue
            out += differences(a.get(k), b.get(k), "%s.%s" % (path, k), tolerance)
        return out
    if isinstance(a, list):
        if len(a) != len(b):
            return ["%s: %d items vs %d" % (path, len(a), len(b))]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += differences(x, y, "%s[%d]" % (path, i), tolerance)
        return out
    return [] if a == b else ["%s: %r vs %r" % (path, a, b)]


class EnginesAgreeCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "consent_mode": "anonymous",
                             "pii_hash_key": "agree-test-pii-key-0123456789abcd",
                             "api_keys": [key_entry("read", "read", READ),
                                          key_entry("admin", "admin", ADMIN)]}
        super().setUpClass()
        diag("seed %d (MILEPOST_DIFF_SEED=%d replays it)" % (SEED, SEED))
        cls.rng = random.Random(SEED)
        t0 = (utcnow() - timedelta(days=6)).replace(minute=0, second=0, microsecond=0)
        cls.shop = Shop(cls.rng, t0, secrets.token_hex(4))
        cls.shop.build()
        cls.send(cls.shop.batches)

    @classmethod
    def send(cls, batches):
        for batch in batches:
            events = [e for e, _ in batch]
            resp = cls.daemon.post_events({"batch": events},
                                          headers={"User-Agent": batch[0][1]})
            assert resp.status == 202, resp

    def ask(self, path, params, engine):
        resp = api_call(self.daemon, "GET", path, key=READ,
                        params=dict(params, engine=engine))
        self.assertEqual(resp.status, 200, "%s %r: %r" % (engine, params, resp))
        self.assertEqual(resp.body["engine"], engine)
        return resp.body

    def compare(self, path, queries, tolerance=0.0):
        """Asks each query of both engines; the mismatches, described."""
        bad = []
        for q in queries:
            sql = self.ask(path, q, "sql")
            index = self.ask(path, q, "index")
            diff = differences(sql, index, tolerance=tolerance)
            if diff:
                bad.append("%s?%s\n  %s" % (path, json.dumps(q), "\n  ".join(diff[:6])))
        return bad

    def test_1_funnel(self):
        queries = [random_funnel(self.rng, self.shop) for _ in range(QUERIES)]
        bad = self.compare("/api/v1/funnel", queries)
        # The data must give the comparison something to compare.
        answers = [self.ask("/api/v1/funnel", q, "sql") for q in queries[:40]]
        self.assertGreater(sum(a["steps"][-1]["entered"] for a in answers), 0)
        self.assertGreater(sum(len(a["groups"] or []) for a in answers), 10)
        if bad:
            self.fail("seed %d: %d of %d funnels differ:\n%s"
                      % (SEED, len(bad), len(queries), "\n".join(bad[:5])))

    def test_1_milestones(self):
        queries = [random_milestones(self.rng, self.shop) for _ in range(QUERIES // 5)]
        bad = self.compare("/api/v1/milestones", queries)
        answers = [self.ask("/api/v1/milestones", q, "sql") for q in queries[:10]]
        self.assertGreater(sum(p["events"] for a in answers for m in a["milestones"]
                               for p in m["periods"]), 0)
        if bad:
            self.fail("seed %d: %d of %d milestones answers differ:\n%s"
                      % (SEED, len(bad), len(queries), "\n".join(bad[:5])))

    def test_1_signals(self):
        queries = [random_signals(self.rng, self.shop) for _ in range(QUERIES // 10)]
        bad = self.compare("/api/v1/signals", queries)
        answer = self.ask("/api/v1/signals", queries[0], "sql")
        self.assertGreater(answer["population"]["people"], 0)
        if bad:
            self.fail("seed %d: %d of %d signals answers differ:\n%s"
                      % (SEED, len(bad), len(queries), "\n".join(bad[:5])))

    def test_1_attribution(self):
        queries = [random_attribution(self.rng, self.shop) for _ in range(QUERIES // 6)]
        bad = self.compare("/api/v1/attribution", queries, tolerance=1e-9)
        answer = self.ask("/api/v1/attribution", dict(queries[0], **{
            "from": rfc3339(self.shop.edges[0]), "to": rfc3339(self.shop.edges[-1])}), "sql")
        self.assertGreater(answer["conversions"], 0)
        if bad:
            self.fail("seed %d: %d of %d attribution answers differ:\n%s"
                      % (SEED, len(bad), len(queries), "\n".join(bad[:5])))

    def test_1_attribution_refused(self):
        """What the index does not hold is PostgreSQL's to answer."""
        base = {"site": "shop", "from": rfc3339(self.shop.edges[0]),
                "to": rfc3339(self.shop.edges[-1])}
        for extra in ({"conversions": "first"}, {"conversion": "checkout_started"}):
            resp = api_call(self.daemon, "GET", "/api/v1/attribution", key=READ,
                            params=dict(base, engine="index", **extra))
            self.assertEqual((resp.status, resp.body["error"]["code"]),
                             (409, "engine_unavailable"), resp)
            auto = self.ask("/api/v1/attribution", dict(base, **extra), "sql")
            resp = api_call(self.daemon, "GET", "/api/v1/attribution", key=READ,
                            params=dict(base, **extra))
            self.assertEqual(resp.body["engine"], "sql")
            self.assertEqual(differences(auto, resp.body), [])

    def test_2_after_changes(self):
        """New events, a link of two people and an erasure reach the next answer."""
        shop, rng = self.shop, self.rng
        t = shop.t0
        extra = [[(shop.ev("product_viewed", t + timedelta(minutes=5), "late1"),
                   AGENTS["desktop"]),
                  (shop.ev("cart_added", t + timedelta(minutes=9), "late1"), AGENTS["desktop"])],
                 [(shop.ev("purchase_completed", t + timedelta(minutes=20), "late2", "ulate"),
                   AGENTS["iphone"])],
                 [(shop.identify(t + timedelta(minutes=15), "late1", "ulate"),
                   AGENTS["desktop"])]]
        queries = [random_funnel(rng, shop) for _ in range(20)]
        queries.append({"site": "shop", "steps": "product_viewed,cart_added,purchase_completed",
                        "from": rfc3339(t - timedelta(hours=1)),
                        "to": rfc3339(t + timedelta(hours=1)), "window": "1d"})
        before = self.ask("/api/v1/funnel", queries[-1], "index")
        self.send(extra)
        after = self.ask("/api/v1/funnel", queries[-1], "index")
        self.assertEqual([s["entered"] for s in after["steps"]],
                         [s["entered"] + 1 for s in before["steps"]],
                         "the late person, linked across two devices, is in at once")
        resp = erase(self.daemon, ADMIN, "ulate-" + shop.run, site="shop")
        self.assertEqual(resp.status, 200, resp)
        erased = self.ask("/api/v1/funnel", queries[-1], "index")
        self.assertEqual([s["entered"] for s in erased["steps"]],
                         [s["entered"] for s in before["steps"]], "the erased person is gone")
        bad = self.compare("/api/v1/funnel", queries)
        if bad:
            self.fail("seed %d, after changes:\n%s" % (SEED, "\n".join(bad[:5])))

    def test_3_retention_by_another_daemon(self):
        """Another daemon on the same database deletes what is older than
        five days: this one's index forgets it before its next answer."""
        shop, rng = self.shop, self.rng
        other = harness.Daemon(self.db, plan=self.daemon_config["plan"],
                               consent_mode="anonymous", retention_days=5,
                               pii_hash_key=self.daemon_config["pii_hash_key"])
        try:
            counts = wait_for_maintenance(other)
        finally:
            self.assertEqual(other.stop(), 0)
        self.assertGreater(counts["deleted_events"], 0, "the test must delete events")
        bad = self.compare("/api/v1/funnel", [random_funnel(rng, shop) for _ in range(30)])
        bad += self.compare("/api/v1/milestones",
                            [random_milestones(rng, shop) for _ in range(10)])
        bad += self.compare("/api/v1/attribution",
                            [random_attribution(rng, shop) for _ in range(10)], tolerance=1e-9)
        if bad:
            self.fail("seed %d, after retention:\n%s" % (SEED, "\n".join(bad[:5])))

    def test_4_commit_after_a_catch_up(self):
        """A transaction that is running when a catch-up takes its snapshot
        and commits after it: its row reaches the next answer. Such a row's
        xid is below that snapshot's xmax (a later one ended first), in its
        list of running ids."""
        shop = self.shop
        q = {"site": "shop", "steps": "product_viewed,cart_added",
             "from": rfc3339(shop.t0 - timedelta(hours=1)),
             "to": rfc3339(shop.t0 + timedelta(hours=1)), "window": "1d"}
        before = self.ask("/api/v1/funnel", q, "index")
        late = harness.PsqlSession(self.db)
        try:
            late.query("BEGIN")
            late.query("INSERT INTO events (site_id, event_id, name, ts, received_at,"
                       " person_id) SELECT 'shop', gen_random_uuid(), 'product_viewed',"
                       " '%s+00', now(), max(person_id) + 1000 FROM events"
                       % harness.utc_text(shop.t0 + timedelta(minutes=30)))
            # A later transaction ends first: the snapshot's xmax passes ours.
            harness.psql(self.db, "SELECT pg_current_xact_id()")
            running = self.ask("/api/v1/funnel", q, "index")
            late.query("COMMIT")
        finally:
            late.close()
        after = self.ask("/api/v1/funnel", q, "index")
        self.assertEqual(running["steps"][0]["entered"], before["steps"][0]["entered"])
        self.assertEqual(after["steps"][0]["entered"], before["steps"][0]["entered"] + 1,
                         "the row committed after the catch-up's snapshot is read")
        self.assertEqual(differences(self.ask("/api/v1/funnel", q, "sql"), after), [])


if __name__ == "__main__":
    harness.main()
