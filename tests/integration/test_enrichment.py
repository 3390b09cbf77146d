#!/usr/bin/env python3
"""Enrichment at ingest: campaign and channel from the URL, the referrer
and explicit campaign fields; device, browser, OS and bots from the user
agent; the event time corrected for the sender's clock."""

from datetime import datetime, timedelta, timezone

import harness
from harness import make_event, psql, rfc3339, utcnow

COLUMNS = ("referrer_host", "utm_source", "utm_medium", "utm_campaign", "click_id_kind", "channel",
           "device", "browser", "os", "bot", "ts_adjusted")

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
WINDOWS_CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0.0.0 Safari/537.36")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def enrichment(db, event_id):
    rows = psql(db, "SELECT %s FROM events WHERE event_id = :'i'" % ", ".join(COLUMNS), i=event_id)
    assert len(rows) == 1, "event %s stored once, got %r" % (event_id, rows)
    return dict(zip(COLUMNS, rows[0]))


class EnrichmentTest(harness.DaemonTestCase):
    # The test site's allowed origin https://shop.example makes its pages
    # internal referrers.

    def post_one(self, event, ua=WINDOWS_CHROME, **kw):
        resp = self.post(event, headers={"User-Agent": ua}, **kw)
        self.assertAccepted(resp, 1)
        return enrichment(self.db, event["event_id"])

    def test_channels(self):
        cases = [
            # (url, referrer, campaign, expected subset)
            ("https://shop.example/?utm_source=Google&utm_medium=CPC&utm_campaign=Winter%20Sale&gclid=x",
             "https://www.google.com/", None,
             {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "Winter Sale",
              "click_id_kind": "gclid", "channel": "Paid Search", "referrer_host": "google.com"}),
            ("https://shop.example/p", "https://www.google.de/", None,
             {"channel": "Organic Search", "referrer_host": "google.de", "utm_source": None}),
            ("https://shop.example/p", "https://l.facebook.com/", None, {"channel": "Organic Social"}),
            ("https://shop.example/p?utm_source=newsletter&utm_medium=email", None, None, {"channel": "Email"}),
            ("https://shop.example/p", "https://someblog.example/post", None,
             {"channel": "Referral", "referrer_host": "someblog.example"}),
            ("https://shop.example/p", None, None, {"channel": "Direct", "referrer_host": None}),
            # Internal navigation is no source: the site's own host and its subdomains.
            ("https://shop.example/p", "https://shop.example/cart", None,
             {"channel": "Direct", "referrer_host": None}),
            ("https://shop.example/p", "https://m.shop.example/", None, {"referrer_host": None}),
            # Explicit campaign fields win over the URL.
            ("https://shop.example/?utm_source=google&utm_medium=cpc", None,
             {"source": "Partner", "medium": "affiliate"},
             {"utm_source": "partner", "utm_medium": "affiliate", "channel": "Affiliates"}),
        ]
        for url, ref, campaign, want in cases:
            e = make_event(url=url)
            if ref is not None:
                e["referrer"] = ref
            if campaign is not None:
                e["campaign"] = campaign
            got = self.post_one(e)
            self.assertEqual({k: got[k] for k in want}, want, "%s from %s" % (url, ref))

    def test_segment_context_campaign_and_user_agent(self):
        e = make_event(url="https://shop.example/",
                       context={"campaign": {"source": "Twitter", "medium": "social"}, "userAgent": IPHONE})
        got = self.post_one(e, ua="python-requests/2.31")
        self.assertEqual((got["utm_source"], got["channel"]), ("twitter", "Organic Social"))
        self.assertEqual((got["device"], got["browser"], got["os"], got["bot"]), ("mobile", "Safari", "iOS", "f"))

    def test_devices(self):
        for ua, want in [(IPHONE, ("mobile", "Safari", "iOS", "f")),
                         (WINDOWS_CHROME, ("desktop", "Chrome", "Windows", "f")),
                         (GOOGLEBOT, ("bot", "Other", "Other", "t"))]:
            got = self.post_one(make_event(), ua=ua)
            self.assertEqual((got["device"], got["browser"], got["os"], got["bot"]), want, ua)

    def test_flagged_bot_is_warned(self):
        """An event stored as a bot's answers a bot_traffic warning: a backend
        posting with the write key (and curl's user agent) finds out at once
        that no query will count it."""
        for ua in ("curl/8.5.0", GOOGLEBOT):
            with self.subTest(ua=ua):
                e = make_event()
                resp = self.post(e, headers={"User-Agent": ua})
                self.assertAccepted(resp, 1)
                self.assertEqual(resp.body["results"], ["stored"])
                self.assertEqual([(w["index"], w["code"], w["path"]) for w in resp.body["warnings"]],
                                 [(0, "bot_traffic", "$")])
                self.assertIn("server key", resp.body["warnings"][0]["message"])
        resp = self.post(make_event(), headers={"User-Agent": WINDOWS_CHROME})
        self.assertEqual(resp.body["warnings"], [])

    def test_clock_skew(self):
        now = utcnow()
        # The sender's clock is 3 hours behind; sent_at says the event
        # happened 5 seconds before it was sent.
        ts = now - timedelta(hours=3, seconds=5)
        e = make_event(ts=rfc3339(ts), sent_at=rfc3339(now - timedelta(hours=3)))
        self.post_one(e)
        (row,) = psql(self.db, "SELECT extract(epoch FROM received_at - ts), ts_adjusted FROM events"
                               " WHERE event_id = :'i'", i=e["event_id"])
        self.assertAlmostEqual(float(row[0]), 5.0, places=2)
        self.assertEqual(row[1], "f")
        ahead = make_event(ts=rfc3339(now + timedelta(minutes=10)))
        self.assertEqual(self.post_one(ahead)["ts_adjusted"], "t")
        resp = self.post(make_event(ts=rfc3339(now - timedelta(days=40))))
        self.assertAccepted(resp, 0, [0])
        self.assertEqual(resp.body["rejected"][0]["errors"][0]["code"], "too_old")


class BotDropTest(harness.DaemonTestCase):
    daemon_config = {"bot_handling": "drop"}

    def test_bots_dropped(self):
        bot, person = make_event(), make_event()
        resp = self.post(bot, headers={"User-Agent": GOOGLEBOT})
        self.assertEqual(resp.status, 202)
        self.assertEqual(resp.body["results"], ["dropped"])
        self.assertEqual([w["code"] for w in resp.body["warnings"]], ["bot_traffic"])
        self.assertAccepted(self.post(person, headers={"User-Agent": IPHONE}), 1)
        self.assertEqual(harness.stored_event_ids(self.db), {person["event_id"]})
        metrics = harness.http_request("GET", self.daemon.url("/metrics")).raw.decode()
        self.assertIn("milepost_events_bots_dropped_total 1", metrics)

    def test_bots_invalid_events_not_kept_as_rejected(self):
        """A crawler's malformed calls are dropped like its valid ones, not
        kept among the rejected events people fix; a person's are kept."""
        bad = make_event(name="Not A Name")
        resp = self.post(bad, headers={"User-Agent": GOOGLEBOT})
        self.assertEqual((resp.status, resp.body["results"]), (202, ["dropped"]), resp)
        self.assertEqual([w["code"] for w in resp.body["warnings"]], ["bot_traffic"])
        self.assertEqual(harness.rejected_rows(self.db, resp.headers["x-request-id"]), [])
        resp = self.post(make_event(name="Not A Name"), headers={"User-Agent": IPHONE})
        self.assertAccepted(resp, 0, [0])
        self.assertEqual(len(harness.rejected_rows(self.db, resp.headers["x-request-id"])), 1)


if __name__ == "__main__":
    harness.main()
