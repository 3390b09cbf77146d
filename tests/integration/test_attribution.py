#!/usr/bin/env python3
"""GET /api/v1/attribution against a fixture worked out by hand below.
Conversion: purchase_completed (revenue in EUR); T is noon ten days ago;
the range is [T - 3d, T + 2d); lookback 7d unless said.

  Q1  Email visit T-3d, Organic Search (google) T-1d, Direct T;
      buys T+5m (100)              -> Email > Organic Search > Direct
  Q2  Paid Search (google cpc) T-2d, buys T-2d+10m (50) -> Paid Search
      Direct T+1d, buys T+1d+5m (70)  -> Paid Search > Direct
  Q4  Referral (blog.example) exactly 7 days before its purchase at
      T+5m (20), Direct T          -> Referral > Direct (the edge counts)
  Q5  Referral one second further back, Direct T, buys T+5m (10)
                                   -> Direct (out of the lookback)
  Q6  Email visit T-1d on device a6, logs in as u6; buys T+5m on device b6
      as u6 (40)                   -> Email > Direct, one person
  Q7  Googlebot buys               -> left out
  N1  Email T-1d, Direct T         -> no conversion: Email > Direct > lost
  N2  Organic Search T             -> Organic Search > lost

6 conversions, 290 EUR. By hand:
  first_touch      Email 2 (140), Paid Search 2 (120), Referral 1 (20),
                   Direct 1 (10)
  last_touch       Direct 5 (240), Paid Search 1 (50)
  last_non_direct  Organic Search 1 (100), Paid Search 2 (120), Referral 1
                   (20), Direct 1 (10: nothing else), Email 1 (40)
  linear           Email 1/3 + 1/2, Organic 1/3, Direct 1/3 + 3 * 1/2 + 1,
                   Paid 1.5, Referral 0.5
  position_based   40/20/40 for Q1 (Email .4, Organic .2, Direct .4); two
                   touches share 50/50; one takes all
conversions=first drops Q2's second purchase (5 left); lookback.referral=8d
brings Q5's referral visit in. time_decay and data_driven are worked out
here by formula (2^(-age / half-life) relative to the last touch; the
Markov chain's removal effects solved exactly with fractions), independently
of the daemon's C."""

import secrets
from datetime import timedelta
from fractions import Fraction

import harness
from admin_api import api_call, key_entry, new_api_key
from harness import rfc3339, utcnow

PLAN = harness.read_example_plan()
READ = new_api_key("rk_attr")
CONSENT = {"analytics": True}
CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
EMAIL = "https://shop.example/p/1?utm_source=news&utm_medium=email&utm_campaign=nov"
PAID = "https://shop.example/p/1?utm_source=google&utm_medium=cpc&utm_campaign=brand"
GOOGLE = {"url": "https://shop.example/", "referrer": "https://www.google.com/"}
BLOG = {"url": "https://shop.example/", "referrer": "https://blog.example/post"}
MODELS = ["first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based",
          "data_driven"]
DAY = 86400


def markov(converted, lost):
    """Credits of each value by removal effect: converted is a list of
    (path, revenue), lost a list of paths. Exact, with fractions."""
    values = sorted({v for p, _ in converted for v in p} | {v for p in lost for v in p})
    counts, conv, revenue = {}, {}, {}
    for path, rev in converted:
        for a, b in zip(["start"] + path, path):
            counts[(a, b)] = counts.get((a, b), 0) + 1
        conv[path[-1]] = conv.get(path[-1], 0) + 1
        revenue[path[-1]] = revenue.get(path[-1], 0) + Fraction(rev)
    for path in lost:
        for a, b in zip(["start"] + path, path + ["lost"]):
            counts[(a, b)] = counts.get((a, b), 0) + 1
    out = {s: sum(n for (a, _), n in counts.items() if a == s) + conv.get(s, 0) for s in values}

    def worth(removed, reward):
        # x_s = sum_t p(s, t) x_t + p(s, conv) r_s, solved by Gauss-Jordan.
        live = [v for v in values if v != removed]
        idx = {v: i for i, v in enumerate(live)}
        n = len(live)
        m = [[Fraction(0)] * (n + 1) for _ in range(n)]
        for v in live:
            i = idx[v]
            m[i][i] += 1
            for (a, b), c in counts.items():
                if a == v and b in idx:
                    m[i][idx[b]] -= Fraction(c, out[v])
            m[i][n] = Fraction(conv.get(v, 0), out[v]) * reward(v)
        for col in range(n):
            piv = next(r for r in range(col, n) if m[r][col] != 0)
            m[col], m[piv] = m[piv], m[col]
            m[col] = [x / m[col][col] for x in m[col]]
            for r in range(n):
                if r != col and m[r][col] != 0:
                    m[r] = [x - m[r][col] * y for x, y in zip(m[r], m[col])]
        x = {v: m[idx[v]][n] for v in live}
        total = sum(c for (a, _), c in counts.items() if a == "start")
        return sum(Fraction(c, total) * x[b] for (a, b), c in counts.items() if a == "start" and b in x)

    def shares(reward, amount):
        base = worth(None, reward)
        effect = {v: 1 - worth(v, reward) / base for v in values}
        return {v: float(amount * effect[v] / sum(effect.values())) for v in values}

    total_rev = sum(Fraction(r) for _, r in converted)
    return (shares(lambda v: 1, len(converted)),
            shares(lambda v: revenue[v] / conv[v] if conv.get(v) else 0, total_rev))


class AttributionCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN),
                             "pii_hash_key": "attr-test-pii-key-0123456789abcd",
                             "api_keys": [key_entry("read", "read", READ)]}
        super().setUpClass()
        t = (utcnow() - timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
        cls.T = t
        run = secrets.token_hex(4)
        m5 = timedelta(minutes=5)

        def e(name, who, at, revenue=None, user=None, **fields):
            props = None if revenue is None else {"order_id": "O-" + secrets.token_hex(3).upper(),
                                                  "revenue": revenue, "currency": "EUR", "item_count": 1}
            return harness.person_event(run, name, who, at, user=user, props=props, **fields)

        def visit(who, at, **fields):
            return e("page_viewed", who, at, **fields)

        buy = "purchase_completed"
        q4_at = t + m5
        people = [
            [visit("q1", t - timedelta(days=3), url=EMAIL), visit("q1", t - timedelta(days=1), **GOOGLE),
             visit("q1", t), e(buy, "q1", t + m5, 100)],
            [visit("q2", t - timedelta(days=2), url=PAID), e(buy, "q2", t - timedelta(days=2) + 2 * m5, 50),
             visit("q2", t + timedelta(days=1)), e(buy, "q2", t + timedelta(days=1) + m5, 70)],
            [visit("q4", q4_at - timedelta(days=7), **BLOG), visit("q4", t), e(buy, "q4", q4_at, 20)],
            [visit("q5", q4_at - timedelta(days=7, seconds=1), **BLOG), visit("q5", t), e(buy, "q5", q4_at, 10)],
            [visit("a6", t - timedelta(days=1), url=EMAIL),
             {"type": "identify", "event_id": harness.new_id(), "anonymous_id": "a6-" + run,
              "user_id": "u6-" + run, "ts": rfc3339(t - timedelta(days=1) + m5), "consent": CONSENT},
             e(buy, "b6", t + m5, 40, user="u6")],
            [visit("n1", t - timedelta(days=1), url=EMAIL), visit("n1", t)],
            [visit("n2", t, **GOOGLE)],
        ]
        for events in people:
            resp = cls.daemon.post_events({"batch": events}, headers={"User-Agent": CHROME})
            assert resp.status == 202 and resp.body["accepted"] == len(events), resp
        resp = cls.daemon.post_events({"batch": [visit("q7", t, url=EMAIL), e(buy, "q7", t + m5, 999)]},
                                      headers={"User-Agent": GOOGLEBOT})
        assert resp.status == 202, resp
        # Each conversion's touches (channel, seconds before T) and revenue.
        cls.conversions = [
            ([("Email", -3 * DAY), ("Organic Search", -DAY), ("Direct", 0)], 300, 100),
            ([("Paid Search", -2 * DAY)], -2 * DAY + 600, 50),
            ([("Paid Search", -2 * DAY), ("Direct", DAY)], DAY + 300, 70),
            ([("Referral", 300 - 7 * DAY), ("Direct", 0)], 300, 20),
            ([("Direct", 0)], 300, 10),
            ([("Email", -DAY), ("Direct", 300)], 300, 40),
        ]
        cls.lost = [["Email", "Direct"], ["Organic Search"]]

    def attribution(self, expect=200, **params):
        base = {"site": "shop", "from": rfc3339(self.T - timedelta(days=3)),
                "to": rfc3339(self.T + timedelta(days=2)), "lookback": "7d"}
        base.update(params)
        resp = api_call(self.daemon, "GET", "/api/v1/attribution", key=READ,
                        params={k: v for k, v in base.items() if v is not None})
        self.assertEqual(resp.status, expect, "%r" % (resp,))
        return resp.body

    def credits(self, body, model):
        return {v["value"]: (round(v[model]["conversions"], 9), round(v[model]["revenue"], 9))
                for v in body["values"] if v[model]["conversions"] != 0}

    def assertCredits(self, body, model, want):
        self.assertEqual(self.credits(body, model),
                         {k: (round(float(c), 9), round(float(r), 9)) for k, (c, r) in want.items()}, model)

    def test_rule_based_models(self):
        body = self.attribution()
        self.assertEqual(body["conversions"], 6)
        self.assertEqual((body["revenue"]["total"], body["revenue"]["currency"]), (290, "EUR"))
        self.assertEqual(body["query"]["models"], MODELS)
        self.assertCredits(body, "first_touch", {"Email": (2, 140), "Paid Search": (2, 120),
                                                 "Referral": (1, 20), "Direct": (1, 10)})
        self.assertCredits(body, "last_touch", {"Direct": (5, 240), "Paid Search": (1, 50)})
        self.assertCredits(body, "last_non_direct", {"Organic Search": (1, 100), "Paid Search": (2, 120),
                                                     "Referral": (1, 20), "Direct": (1, 10), "Email": (1, 40)})
        third = Fraction(1, 3)
        self.assertCredits(body, "linear", {
            "Email": (third + Fraction(1, 2), 100 * third + 20), "Organic Search": (third, 100 * third),
            "Direct": (third + 2.5, 100 * third + 35 + 10 + 10 + 20), "Paid Search": (1.5, 85),
            "Referral": (0.5, 10)})
        self.assertCredits(body, "position_based", {
            "Email": (0.9, 60), "Organic Search": (0.2, 20), "Direct": (2.9, 115), "Paid Search": (1.5, 85),
            "Referral": (0.5, 10)})

    def test_time_decay(self):
        body = self.attribution(half_life="2d")
        want = {}
        for touches, _, rev in self.conversions:
            last = touches[-1][1]
            w = [2 ** (-(last - at) / (2 * DAY)) for _, at in touches]
            for (channel, _), x in zip(touches, w):
                c, r = want.get(channel, (0, 0))
                want[channel] = (c + x / sum(w), r + rev * x / sum(w))
        self.assertCredits(body, "time_decay", want)
        self.assertEqual(body["query"]["half_life"], "2d")

    def test_data_driven(self):
        body = self.attribution(models="data_driven")
        self.assertEqual(body["query"]["models"], ["data_driven"])
        conv, rev = markov([([c for c, _ in t], r) for t, _, r in self.conversions], self.lost)
        self.assertCredits(body, "data_driven", {v: (conv[v], rev[v]) for v in conv if conv[v]})
        for v in body["values"]:
            self.assertGreater(v["data_driven"]["removal_effect"], 0)
            self.assertEqual(set(v), {"value", "data_driven"})

    def test_every_model_sums_to_the_conversions(self):
        body = self.attribution()
        for model in MODELS:
            self.assertAlmostEqual(sum(v[model]["conversions"] for v in body["values"]), 6, places=9)
            self.assertAlmostEqual(sum(v[model]["revenue"] for v in body["values"]), 290, places=9)

    def test_paths(self):
        paths = self.attribution()["paths"]
        self.assertEqual(paths["top"], [{"path": p, "conversions": 1} for p in (
            "Direct", "Paid Search", "Paid Search > Direct", "Email > Direct", "Email > Organic Search > Direct",
            "Referral > Direct")])
        self.assertAlmostEqual(paths["touches"]["mean"], 11 / 6, places=9)
        self.assertEqual(paths["touches"]["median"], 2)
        ages = sorted(conv - t[0][1] for t, conv, _ in self.conversions)
        self.assertAlmostEqual(paths["seconds_to_conversion"]["mean"], sum(ages) / 6, places=3)
        self.assertAlmostEqual(paths["seconds_to_conversion"]["median"], (ages[2] + ages[3]) / 2, places=3)

    def test_first_conversions_only(self):
        body = self.attribution(conversions="first", models="first_touch,last_touch,data_driven")
        self.assertEqual(body["conversions"], 5)
        self.assertCredits(body, "last_touch", {"Direct": (4, 170), "Paid Search": (1, 50)})
        # Q2 converted in the range: neither its second purchase nor its
        # visits make a path that did not convert.
        firsts = [c for i, c in enumerate(self.conversions) if i != 2]
        conv, rev = markov([([c for c, _ in t], r) for t, _, r in firsts], self.lost)
        self.assertCredits(body, "data_driven", {v: (conv[v], rev[v]) for v in conv if conv[v]})

    def test_lookback_per_channel(self):
        body = self.attribution(**{"lookback.referral": "8d", "models": "first_touch"})
        self.assertCredits(body, "first_touch", {"Email": (2, 140), "Paid Search": (2, 120),
                                                 "Referral": (2, 30)})
        self.assertEqual(body["query"]["lookback_by_channel"], {"Referral": "8d"})
        # With one day, the visits a day and five minutes before the
        # purchases at T+5m are out: only the purchases' own visits stay.
        body = self.attribution(lookback="1d", models="first_touch")
        self.assertCredits(body, "first_touch", {"Paid Search": (1, 50), "Direct": (5, 240)})

    def test_source_medium(self):
        body = self.attribution(dimension="source_medium", models="last_touch,first_touch")
        self.assertCredits(body, "last_touch", {"(direct) / (none)": (5, 240), "google / cpc": (1, 50)})
        self.assertEqual(self.credits(body, "first_touch")["news / email"], (2, 140))
        self.assertEqual([v["value"] for v in body["values"]][:2], ["(direct) / (none)", "google / cpc"],
                         "sorted by the first model asked for")

    def test_parameters_are_checked(self):
        for params in ({"models": "first_touch,nope"}, {"lookback": "0d"}, {"lookback": "181d"},
                       {"lookback.nochannel": "3d"}, {"lookback.email": "x"}, {"position": "50,50,10"},
                       {"position": "0,100,0"}, {"dimension": "device"}, {"conversions": "some"},
                       {"half_life": "0h"}, {"conversion": "Bad Name"}):
            with self.subTest(params=params):
                base = {"site": "shop"}
                base.update(params)
                resp = api_call(self.daemon, "GET", "/api/v1/attribution", key=READ, params=base)
                self.assertError(resp, 400, "invalid_parameter")
        resp = api_call(self.daemon, "GET", "/api/v1/attribution", key=READ,
                        params={"site": "shop", "conversion": "not_planned", "conversions": "first"})
        self.assertError(resp, 400, "unknown_event")
        resp = api_call(self.daemon, "GET", "/api/v1/attribution", params={"site": "shop"})
        self.assertEqual(resp.status, 401)


if __name__ == "__main__":
    harness.main()
