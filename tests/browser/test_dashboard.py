#!/usr/bin/env python3
"""The built-in dashboard (GET /) in Debian's chromium against the real
daemon, with fixture data sent through the ingestion API: a dozen people
visiting from different channels and going part of the way through the
example shop's funnel, on days spread over the last two weeks.

What the page shows is compared with what the API answers for the same
parameters, fetched here with the same key: the funnel's counts, rates and
drop-offs (and its low-volume mark), attribution's credit under every
model, the milestones' target progress and per-period people, the
framework map, the signals' order and the rejected events by code. Also:
changing a control sends a new request with the new parameter and puts
it in the URL, a shared URL opens the same view, a wrong key gets a clear
message, and the key stays in sessionStorage, out of every URL.
Screenshots at desktop and phone widths go to the build folder
(browser-screenshots/); they are for people, the numbers are the test."""

import json
import os
import secrets
import sys
import urllib.parse
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import harness  # noqa: E402
from admin_api import api_call, key_entry, new_api_key  # noqa: E402
from test_snippet import Browser  # noqa: E402

PLAN = harness.read_example_plan()
READ = new_api_key("rk_dash")
ADMIN = new_api_key("ak_dash")
RULES = "/api/v1/alerts/rules"
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")
PROPS = {
    "product_viewed": {"product_id": "P-1", "price": 10.0, "currency": "EUR"},
    "cart_added": {"product_id": "P-1", "quantity": 1, "currency": "EUR"},
    "checkout_started": {"cart_id": "C-1", "item_count": 1, "cart_value": 40.0, "currency": "EUR"},
    "purchase_completed": {"order_id": "O-1", "revenue": 40.0, "currency": "EUR", "item_count": 1},
    "wishlist_added": {"product_id": "P-1"},
}
LANDINGS = {
    "email": ("https://shop.example/p/1?utm_source=news&utm_medium=email&utm_campaign=dec", None),
    "search": ("https://shop.example/p/1", "https://www.google.com/"),
    "social": ("https://shop.example/p/1?utm_source=facebook&utm_medium=paid_social&utm_campaign=x", None),
    "direct": ("https://shop.example/p/1", None),
}
STEPS = ["product_viewed", "cart_added", "checkout_started", "purchase_completed"]
# The plan's funnel starts with a search, which the fixture has none of.
STEPS_Q = "&steps=" + ",".join(STEPS)
# Days ago: one of them falls in the last complete week whatever today is.
DAYS = (2, 5, 8, 11)
DESKTOP = (1280, 800)
PHONE = (390, 844)
LOAD_TIMEOUT_MS = 20000


def screenshot_dir():
    build = os.environ.get("MILEPOST_TEST_BUILDDIR") or os.path.join(harness.REPO_ROOT, "build")
    path = os.path.join(build, "browser-screenshots")
    os.makedirs(path, exist_ok=True)
    return path


# -- numbers as the page writes them (Intl.NumberFormat, en-US)

def _half_up(value, places):
    """Intl rounds the exact value of the double half away from zero."""
    return Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def count(n):
    return "–" if n is None else "{:,}".format(n)


def pct(rate):
    return "–" if rate is None else "{:,}%".format(_half_up(rate * 100, 1))


def pct100(p):
    return "–" if p is None else pct(p / 100)


def dec(x):
    if x is None:
        return "–"
    q = _half_up(x, 2)
    text = "{:,}".format(q)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class DashboardCase(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.db = harness.fresh_database()
        cls.daemon = harness.Daemon(cls.db, plan=harness.write_plan(PLAN),
                                    pii_hash_key="dashboard-test-pii-key-0123456789",
                                    api_keys=[key_entry("read", "read", READ),
                                              key_entry("admin", "admin", ADMIN)])
        cls.daemons_to_watch = (cls.daemon,)
        cls.send_fixture()
        cls.judge_rules()
        cls.browser = Browser()
        cls.shots = screenshot_dir()

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        if cls.daemon.alive() and cls.daemon.stop() != 0:
            raise AssertionError("milepost exited badly on SIGTERM")

    @classmethod
    def send_fixture(cls):
        """Person i lands from a channel on a day of DAYS, goes through the
        first (i % 5) + 1 steps; every third comes back another day from
        another channel first (so models disagree); some wishlist."""
        run = secrets.token_hex(4)
        now = harness.utcnow().replace(microsecond=0)
        channels = list(LANDINGS)
        for i in range(14):
            start = (now - timedelta(days=DAYS[i % len(DAYS)])).replace(hour=10 + i % 6, minute=0, second=0)
            who = "p%d" % i
            events = []

            def ev(name, at, landing=None):
                fields = {}
                if landing:
                    fields["url"], ref = LANDINGS[landing]
                    if ref:
                        fields["referrer"] = ref
                events.append(harness.person_event(run, name, who, at, props=dict(PROPS[name]), **fields))

            if i % 3 == 0:
                ev("product_viewed", start - timedelta(days=1), channels[(i + 1) % len(channels)])
            ev("product_viewed", start, channels[i % len(channels)])
            if i % 4 == 1:
                ev("wishlist_added", start + timedelta(minutes=5))
            for k, step in enumerate(STEPS[1:(i % 5) + 1 if i % 5 < 4 else 4]):
                ev(step, start + timedelta(minutes=10 * (k + 1) + i))
            resp = cls.daemon.post_events({"batch": events}, headers={"User-Agent": CHROME})
            assert resp.status == 202 and resp.body["accepted"] == len(events), resp
        # Two refused events, for the rejected summary.
        bad = [harness.person_event(run, "cart_added", "x", now, props={"product_id": "P", "quantity": 0}),
               harness.person_event(run, "wishlist_shared", "x", now)]
        resp = cls.daemon.post_events({"batch": bad}, headers={"User-Agent": CHROME})
        assert resp.status == 202, resp

    @classmethod
    def judge_rules(cls):
        """Two alert rules, judged now as the evaluator would (notify=true
        stores the transition), whatever their verdicts turn out to be."""
        rules = [{"name": "Carts watch", "owner": "carts@example.com", "min_volume": 1,
                  "metric": {"type": "count", "event": "cart_added", "unit": "people"},
                  "condition": {"kind": "threshold", "below": 1000}},
                 {"name": "Checkout rate", "owner": "checkout@example.com", "severity": "critical",
                  "metric": {"type": "conversion_rate", "from": "checkout_started", "to": "purchase_completed"},
                  "condition": {"kind": "threshold", "below": 0.3}}]
        for rule in rules:
            resp = api_call(cls.daemon, "POST", RULES, key=ADMIN, params={"site": "shop"}, body=rule)
            assert resp.status == 201, resp
            path = "%s/%d/evaluate" % (RULES, resp.body["id"])
            resp = api_call(cls.daemon, "POST", path, key=ADMIN, params={"site": "shop", "notify": "true"})
            assert resp.status == 200, resp

    # -- helpers

    def api(self, path, **params):
        params = {k: v for k, v in params.items() if v not in (None, "")}
        resp = api_call(self.daemon, "GET", "/api/v1/" + path, key=READ, params=params)
        self.assertEqual(resp.status, 200, resp)
        return resp.body

    def js(self, expr):
        return self.browser.do("eval", js=expr)

    def wait(self, expr, timeout=LOAD_TIMEOUT_MS):
        return self.browser.do("wait", js=expr, timeout=timeout)

    def open(self, query="", key=READ, size=DESKTOP):
        """A new browser context on the dashboard of the shop (the daemon
        has two sites) with query; signs in with key (None: not at all)
        and waits for the panel to be drawn."""
        self.browser.do("open", locale="en-US", width=size[0], height=size[1])
        self.browser.do("goto", url=self.daemon.url("/") + "?site=shop" + query.replace("?", "&", 1))
        if key is None:
            return
        self.browser.do("fill", selector="#key", value=key)
        self.browser.do("click", selector="#key-form button[type=submit]")
        if key == READ:
            self.wait_loaded()

    def wait_loaded(self):
        """Until the visible panel holds its answer (or an error)."""
        return self.wait("(() => { const p = document.querySelector('.panel:not([hidden]) .body');"
                         " return p && !p.hasAttribute('aria-busy') && !p.querySelector('.loading')"
                         " && p.children.length > 0; })()")

    def visible(self, element_id):
        return self.js("getComputedStyle(document.getElementById(%s)).display !== 'none'"
                       % json.dumps(element_id))

    def shot(self, name):
        for label, (w, h) in (("desktop", DESKTOP), ("phone", PHONE)):
            self.browser.do("viewport", width=w, height=h)
            self.browser.do("screenshot", path=os.path.join(self.shots, "%s-%s.png" % (name, label)))
        self.browser.do("viewport", width=DESKTOP[0], height=DESKTOP[1])

    def page_query(self):
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.js("location.href")).query))

    def funnel_rows(self, group=""):
        sel = json.dumps("#funnel .group[data-group=%s] tbody tr" % json.dumps(group))
        return self.js("""[...document.querySelectorAll(%s)].map(tr => ({
            name: tr.dataset.step,
            entered: tr.querySelector('[data-field=entered]').textContent,
            from_previous: tr.querySelector('[data-field=from_previous]').firstChild.textContent,
            from_first: tr.querySelector('[data-field=from_first]').firstChild.textContent,
            interval: (tr.querySelector('[data-field=from_first] small') || {}).textContent || null,
            drop_off: tr.querySelector('[data-field=drop_off]').textContent}))""" % sel)

    def expected_funnel_rows(self, steps):
        out = []
        for s in steps:
            p, f = s["conversion_from_previous"], s["conversion_from_first"]
            out.append({"name": s["name"], "entered": count(s["entered"]),
                        "from_previous": pct(p and p["rate"]), "from_first": pct(f and f["rate"]),
                        "interval": " %s–%s" % (pct(f["lo"]), pct(f["hi"])) if f else None,
                        "drop_off": count(s["drop_off"])})
        return out

    # -- tests

    def test_wrong_key_says_so(self):
        self.open(key="rk_not_a_key_" + secrets.token_hex(8))
        text = self.wait("(() => { const m = document.getElementById('message');"
                         " return !m.hidden && m.textContent; })()")
        self.assertIn("That key was refused (401 invalid_api_key)", text)
        self.assertTrue(self.visible("key-form"), "the form stays")
        self.assertFalse(self.visible("app"))
        self.assertIsNone(self.js("sessionStorage.getItem('milepost.readKey')"), "a refused key is not kept")

    def test_a_key_for_several_sites_needs_one(self):
        self.browser.do("open", locale="en-US")
        self.browser.do("goto", url=self.daemon.url("/") + "?tab=funnel")
        self.browser.do("fill", selector="#key", value=READ)
        self.browser.do("click", selector="#key-form button[type=submit]")
        self.wait_loaded()
        self.assertIn("400 invalid_parameter: site is required",
                      self.js("document.querySelector('#funnel .error').textContent"))
        # The Site field suggests the sites the key sees, as the API lists them.
        sites = self.api("sites")["sites"]
        self.assertEqual(len(sites), 2)
        self.wait("document.querySelectorAll('#site-list option').length === %d" % len(sites))
        self.assertEqual(self.js("[...document.querySelectorAll('#site-list option')]"
                                 ".map(o => [o.value, o.label])"), [[s["id"], s["name"]] for s in sites])
        self.browser.do("fill", selector="#site", value="shop")
        self.browser.do("press", selector="#site", key="Enter")
        self.wait("location.search.includes('site=shop')")
        self.wait_loaded()
        self.assertTrue(self.js("!!document.querySelector('#funnel table.funnel')"))

    def test_a_write_key_is_not_a_read_key(self):
        self.open(key=harness.SHOP_KEY)
        self.wait_loaded()
        text = self.js("document.querySelector('#framework .error').textContent")
        self.assertIn("403 forbidden", text)

    def test_framework_map(self):
        self.open("?tab=framework")
        plan = self.api("plan", site="shop")
        phases = self.js("""[...document.querySelectorAll('#framework .phase')].map(p => ({
            name: p.dataset.phase,
            milestones: [...p.querySelectorAll('.event')].map(e => [e.dataset.event,
                e.querySelector('.owner').textContent, (e.querySelector('.target') || {}).textContent || null])}))""")
        self.assertEqual([p["name"] for p in phases], [p["name"] for p in plan["phases"]])
        for got, want in zip(phases, plan["phases"]):
            self.assertEqual([m[0] for m in got["milestones"]], [m["name"] for m in want["milestones"]])
            for m, w in zip(got["milestones"], want["milestones"]):
                self.assertEqual(m[1], "Owner: " + w["owner"] if w["owner"] else "No owner")
                if w["target"]:
                    self.assertIn("target %s per %s" % (pct(w["target"]["target"]), w["target"]["period"]), m[2])
                else:
                    self.assertIsNone(m[2])
        secondary = self.js("[...document.querySelectorAll('#framework .secondary .event')].map(e => e.dataset.event)")
        self.assertEqual(secondary, [s["name"] for s in plan["secondary_actions"]])
        macro = self.js("document.querySelector('#framework .event.macro').dataset.event")
        self.assertEqual(macro, plan["macro_conversion"]["name"])
        self.shot("framework")

    def test_funnel_numbers_equal_the_api(self):
        self.open("?tab=funnel&window=7d" + STEPS_Q)
        f = self.api("funnel", site="shop", window="7d", steps=",".join(STEPS))
        self.assertGreater(f["steps"][0]["entered"], 0, "the fixture is in the default range")
        self.assertEqual(self.funnel_rows(), self.expected_funnel_rows(f["steps"]))
        self.assertEqual(self.js("!!document.querySelector('#funnel .summary .badge.low')"), f["low_volume"])
        self.shot("funnel")

    def test_funnel_breakdown_groups(self):
        self.open("?tab=funnel&breakdown=channel" + STEPS_Q)
        f = self.api("funnel", site="shop", breakdown="channel", steps=",".join(STEPS))
        self.assertGreater(len(f["groups"]), 1)
        for g in f["groups"]:
            with self.subTest(group=g["value"]):
                self.assertEqual(self.funnel_rows(g["value"]), self.expected_funnel_rows(g["steps"]))
                sel = json.dumps("#funnel .group[data-group=%s]" % json.dumps(g["value"]))
                low = self.js("document.querySelector(%s).classList.contains('is-low')" % sel)
                self.assertEqual(low, g["low_volume"])
        self.assertEqual(self.js("document.getElementById('breakdown').value"), "channel")

    def test_changing_the_window_asks_again_and_updates_the_url(self):
        self.open("?tab=funnel" + STEPS_Q)
        before = len(self.browser.do("requests"))
        self.browser.do("select", selector="#window", value="14d")
        self.wait("location.search.includes('window=14d')")
        self.wait_loaded()
        asked = [urllib.parse.urlsplit(u) for u in self.browser.do("requests")[before:]]
        funnels = [dict(urllib.parse.parse_qsl(u.query)) for u in asked if u.path == "/api/v1/funnel"]
        self.assertTrue(funnels, "no new funnel request")
        self.assertEqual(funnels[-1].get("window"), "14d")
        self.assertEqual(self.page_query().get("window"), "14d")
        f = self.api("funnel", site="shop", window="14d", steps=",".join(STEPS))
        self.assertEqual(self.funnel_rows(), self.expected_funnel_rows(f["steps"]))
        # A date too: the request carries it, and so does the URL.
        frm = (harness.utcnow() - timedelta(days=9)).date().isoformat()
        self.browser.do("fill", selector="#from", value=frm)
        self.wait("location.search.includes('from=%s')" % frm)
        self.wait_loaded()
        asked = [dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(u).query))
                 for u in self.browser.do("requests") if "/api/v1/funnel" in u]
        self.assertEqual((asked[-1].get("from"), asked[-1].get("window")), (frm, "14d"))
        f = self.api("funnel", site="shop", window="14d", steps=",".join(STEPS), **{"from": frm})
        self.assertEqual(self.funnel_rows(), self.expected_funnel_rows(f["steps"]))

    def test_a_shared_url_opens_the_same_view(self):
        steps = "product_viewed,cart_added"
        query = "?tab=funnel&order=strict&window=1d&steps=" + urllib.parse.quote(steps)
        self.open(query)
        self.assertEqual(self.js("document.getElementById('order').value"), "strict")
        self.assertEqual(self.js("document.getElementById('steps').value"), steps)
        f = self.api("funnel", site="shop", window="1d", order="strict", steps=steps)
        self.assertEqual(self.funnel_rows(), self.expected_funnel_rows(f["steps"]))
        # The tabs keep the state; back returns to the funnel.
        self.browser.do("click", selector=".tabs a[data-tab=signals]")
        self.wait("location.search.includes('tab=signals')")
        self.assertEqual(self.page_query().get("order"), "strict")
        self.js("history.back()")
        self.wait("!document.getElementById('panel-funnel').hidden")

    def test_attribution_numbers_equal_the_api(self):
        self.open("?tab=attribution")
        a = self.api("attribution", site="shop", dimension="channel", lookback="30d", models="all")
        self.assertGreater(len(a["values"]), 1, "the fixture credits several channels")
        shown = self.js("""Object.fromEntries([...document.querySelectorAll('#attribution table.attribution tbody tr')]
            .map(tr => [tr.dataset.value, Object.fromEntries([...tr.querySelectorAll('td')]
            .map(td => [td.dataset.model, td.querySelector('.conv').textContent]))]))""")
        want = {v["value"]: {m: dec(v[m]["conversions"]) for m in a["query"]["models"]} for v in a["values"]}
        self.assertEqual(shown, want)
        models = {m for row in shown.values() for m in row}
        self.assertGreaterEqual(len(models), 2)
        paths = self.js("[...document.querySelectorAll('#attribution table.paths tbody tr')]"
                        ".map(tr => [tr.querySelector('th').textContent, tr.querySelector('td').textContent])")
        self.assertEqual(paths, [[p["path"], count(p["conversions"])] for p in a["paths"]["top"]])
        self.shot("attribution")

    def test_milestone_targets_equal_the_api(self):
        self.open("?tab=targets&interval=week")
        m = self.api("milestones", site="shop", interval="week")
        targeted = [x for x in m["milestones"] if x["target"]]
        self.assertTrue(targeted)
        self.assertTrue(any(x["target"]["rate"] is not None for x in targeted),
                        "the fixture reaches into the last complete week")
        shown = self.js("""Object.fromEntries([...document.querySelectorAll('#targets table.targets tbody tr')]
            .map(tr => [tr.dataset.milestone, ['rate', 'attainment', 'progress', 'pace']
            .map(f => tr.querySelector('[data-field=' + f + ']').textContent)]))""")
        pace = {"on_track": "on track", "behind": "behind", None: "no data"}
        want = {x["name"]: [pct(x["target"]["rate"]), pct100(x["target"]["attainment_pct"]),
                            pct100(x["target"]["progress_pct"]), pace[x["target"]["pace"]]] for x in targeted}
        self.assertEqual(shown, want)
        people = self.js("""Object.fromEntries([...document.querySelectorAll('#targets table.periods tbody tr[data-milestone]')]
            .map(tr => [tr.dataset.milestone, [...tr.querySelectorAll('td')].map(td =>
            [td.dataset.start, td.querySelector('.rate').textContent, td.querySelector('.people').textContent])]))""")
        want = {x["name"]: [[p["start"], pct(p["rate"]), "%s people" % count(p["people"])] for p in x["periods"]]
                for x in m["milestones"]}
        self.assertEqual(people, want)
        self.shot("targets")

    def test_signals_ranked_as_the_api(self):
        self.open("?tab=signals")
        s = self.api("signals", site="shop", window="30d")
        shown = self.js("[...document.querySelectorAll('#signals tbody tr')].map(tr =>"
                        " [tr.dataset.signal, tr.querySelector('[data-field=lift]').textContent])")
        self.assertEqual(shown, [[x["name"], "–" if x["lift"] is None else "× " + dec(x["lift"])]
                                 for x in s["signals"]])
        self.shot("signals")

    def test_alerts_and_rejected_by_code(self):
        self.open("?tab=alerts")
        states = self.api("alerts", site="shop")["alerts"]
        self.assertEqual(len(states), 2)
        shown = self.js("[...document.querySelectorAll('#alerts table.alert-states tbody tr')]"
                        ".map(tr => [...tr.children].slice(0, 4).map(c => c.textContent))")
        self.assertEqual(shown, [[a["name"], a["state"].replace("_", " "), a["severity"], a["owner"]] for a in states])
        events = self.api("alerts/events", site="shop", limit=20)["events"]
        self.assertTrue(events, "judging the rules stored their first transitions")
        shown = self.js("[...document.querySelectorAll('#alerts table.alert-events tbody tr')]"
                        ".map(tr => [tr.children[1].textContent, tr.children[2].textContent, tr.children[3].textContent])")
        self.assertEqual(shown, [[e["rule_name"], "%s → %s" % (e["from"].replace("_", " "), e["to"].replace("_", " ")),
                                  e["why"] or "–"] for e in events])
        r = self.api("rejected", site="shop", limit=1)
        self.assertTrue(r["summary"]["by_code"])
        shown = self.js("Object.fromEntries([...document.querySelectorAll('#alerts table.rejected tbody tr')]"
                        ".map(tr => [tr.dataset.code, tr.querySelector('td').textContent]))")
        self.assertEqual(shown, {c: count(n) for c, n in r["summary"]["by_code"].items()})
        self.shot("alerts")

    def test_keyboard_and_labels(self):
        self.open("?tab=framework")
        self.browser.do("press", selector=".tabs a[data-tab=attribution]", key="Enter")
        self.wait("location.search.includes('tab=attribution')")
        self.wait_loaded()
        self.assertTrue(self.visible("panel-attribution"))
        self.assertFalse(self.visible("panel-framework"))
        self.assertEqual(self.js("document.activeElement.id"), "main", "the focus moves to the panel")
        self.assertEqual(self.js("document.querySelector('.tabs a[aria-current=page]').dataset.tab"), "attribution")
        unlabelled = self.js("[...document.querySelectorAll('input, select')].filter(c => !c.labels.length)"
                             ".map(c => c.id || c.name)")
        self.assertEqual(unlabelled, [])
        headless = self.js("[...document.querySelectorAll('table')].filter(t => !t.querySelector('thead th[scope=col]'))"
                           ".length")
        self.assertEqual(headless, 0, "every table has column headers")
        bars = self.js("[...document.querySelectorAll('.bar')].filter(b => !b.textContent.trim()).length")
        self.assertEqual(bars, 0, "every bar carries its value as text")

    def test_the_key_stays_in_the_tab(self):
        self.open("?tab=funnel")
        self.assertFalse(self.visible("key-form"), "signed in: the key form is gone")
        self.assertTrue(self.visible("app"))
        self.assertEqual(self.js("sessionStorage.getItem('milepost.readKey')"), READ)
        self.assertEqual(self.js("localStorage.length"), 0)
        self.assertEqual(self.js("document.cookie"), "")
        for url in self.browser.do("requests"):
            self.assertNotIn(READ, url)
            self.assertTrue(url.startswith(self.daemon.url("/")), "only the collector is asked: %s" % url)
        self.browser.do("click", selector="#sign-out")
        self.assertIsNone(self.js("sessionStorage.getItem('milepost.readKey')"))
        self.assertTrue(self.visible("key-form"))
        self.assertFalse(self.visible("app"))


if __name__ == "__main__":
    harness.main(day_bound=True)
