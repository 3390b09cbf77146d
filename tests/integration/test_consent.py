#!/usr/bin/env python3
"""Consent: an event whose plan definition needs a category is stored only
when the event grants it; otherwise it gets the warning consent_missing and
is dropped (consent_mode drop) or stored anonymised (consent_mode
anonymous). Sec-GPC: 1 withdraws marketing, DNT: 1 too with honor_dnt."""

import harness
from harness import make_event, new_id

PII_KEY = "consent-test-pii-key-000000000000"

PLAN = {
    "version": 2,
    "macro_conversion": "order_placed",
    "consent_categories": ["analytics", "marketing"],
    "unknown_events": "reject",
    "phases": [{"name": "buy", "milestones": ["order_placed"]}],
    "events": {
        "order_placed": {
            "kind": "macro", "consent": "analytics",
            "properties": {
                "order_id": {"type": "string", "required": True},
                "email": {"type": "string", "pii": "hash", "max_length": 60},
                "phone": {"type": "string", "pii": "drop"},
                "total": {"type": "number"},
            },
        },
        "page_viewed": {"kind": "page", "consent": "analytics",
                        "properties": {"section": {"type": "string"}}},
        "content_shared": {
            "kind": "secondary", "consent": "marketing",
            "properties": {"method": {"type": "string", "enum": ["email", "copy_link"]},
                           "recipient_email": {"type": "string", "pii": "drop"}},
        },
        "error_shown": {"kind": "secondary"},
    },
}

ANALYTICS = {"analytics": True}
BOTH = {"analytics": True, "marketing": True}


def ids():
    tag = new_id()[:8]
    return {"anonymous_id": "anon-c-" + tag, "user_id": "user-c-" + tag, "session_id": "sess-c-" + tag}


class ConsentCase(harness.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        cls.daemon_config = dict(cls.daemon_config, plan=harness.write_plan(PLAN), pii_hash_key=PII_KEY)
        super().setUpClass()

    def send(self, events, results, headers=None, warnings=None, accepted=None):
        """Post events as one batch; check results (and warnings when given,
        as {index: [(code, path)]}); returns the response."""
        resp = self.post({"batch": events}, headers=headers)
        n = accepted if accepted is not None else sum(r in ("stored", "anonymised") for r in results)
        self.assertAccepted(resp, n, [i for i, r in enumerate(results) if r == "rejected"])
        self.assertEqual(resp.body["results"], results, "%r" % (resp.body,))
        if warnings is not None:
            self.assertEqual(harness.answer_problems(resp, "warnings"), warnings, "warnings of %r" % (resp.body,))
        return resp

    def row(self, e):
        rows = harness.event_rows(self.db, [e["event_id"]])
        self.assertIn(e["event_id"], rows, "event %s stored" % e["name"])
        return rows[e["event_id"]]


class DropModeTest(ConsentCase):
    """consent_mode drop (the default), honor_dnt false (the default)."""

    daemon_config = {}

    def test_granted_is_stored(self):
        e = make_event(name="page_viewed", consent={"analytics": True, "marketing": False},
                       props={"section": "news"}, **ids())
        self.send([e], ["stored"], warnings={})
        row = self.row(e)
        self.assertEqual((row["consented"], row["consent"], row["anonymous_id"], row["user_id"]),
                         (True, e["consent"], e["anonymous_id"], e["user_id"]))
        self.assertEqual((row["plan_version"], row["kind"]), (PLAN["version"], "page"))

    def test_missing_consent_dropped(self):
        """Not granted: result dropped, warning consent_missing, nothing
        written anywhere, the client is not told it failed."""
        events = [
            make_event(name="page_viewed", **ids()),                                     # no consent at all
            make_event(name="page_viewed", consent={"analytics": False}, **ids()),
            make_event(name="page_viewed", consent={"marketing": True}, **ids()),        # another category
            make_event(name="content_shared", consent=ANALYTICS, props={"method": "email"}, **ids()),
            make_event(name="order_placed", consent={}, props={"order_id": "O-1", "email": "x@example.com"},
                       **ids()),
        ]
        before = harness.count_rows(self.db)
        resp = self.send(events, ["dropped"] * 5, warnings={
            0: [("consent_missing", "$.consent.analytics")], 1: [("consent_missing", "$.consent.analytics")],
            2: [("consent_missing", "$.consent.analytics")], 3: [("consent_missing", "$.consent.marketing")],
            4: [("consent_missing", "$.consent.analytics")]})
        self.assertEqual(resp.body["rejected"], [])
        self.assertEqual(harness.count_rows(self.db), before, "a dropped event is written nowhere")
        for e in events:
            self.assertEqual(harness.tables_containing(self.db, e["anonymous_id"]), {}, "no trace of %r" % e)
        self.assertEqual(harness.tables_containing(self.db, "x@example.com"), {})
        # The id is not used up: granted later, the same event is stored.
        fixed = dict(events[0], consent=ANALYTICS)
        self.send([fixed], ["stored"], warnings={})
        self.assertEqual(harness.event_id_counts(self.db, [fixed["event_id"]]), {fixed["event_id"]: 1})

    def test_malformed_without_consent_dropped(self):
        """An event that does not even parse obeys consent too: without it,
        nothing of it is kept, not even in rejected_events (its ids were
        kept there before)."""
        e = make_event(name="page_viewed", ts="yesterday", **ids())
        before = harness.count_rows(self.db)
        self.send([e], ["dropped"], warnings={0: [("consent_missing", "$.consent.analytics")]})
        self.assertEqual(harness.count_rows(self.db), before, "a dropped event is written nowhere")
        for v in (e["anonymous_id"], e["user_id"], e["session_id"]):
            self.assertEqual(harness.tables_containing(self.db, v), {}, "%s stored somewhere" % v)
        # With its consent, the same malformed event is kept aside.
        resp = self.send([dict(e, consent=ANALYTICS)], ["rejected"], warnings={})
        self.assertEqual(harness.answer_problems(resp), {0: [("invalid_timestamp", "$.ts")]})
        (row,) = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual(row["payload"]["anonymous_id"], e["anonymous_id"])

    def test_segment_consent_in_context(self):
        """Segment's context.consent.categoryPreferences grants consent when
        the event has no consent of its own; consent wins when both come;
        Sec-GPC still withdraws marketing."""
        seg = {"consent": {"categoryPreferences": {"analytics": True, "marketing": True}}}
        granted = make_event(name="content_shared", context=seg, props={"method": "email"}, **ids())
        overruled = make_event(name="page_viewed", context=seg, consent={"analytics": False}, **ids())
        self.send([granted, overruled], ["stored", "dropped"],
                  warnings={1: [("consent_missing", "$.consent.analytics")]})
        self.assertEqual(self.row(granted)["consent"], {"analytics": True, "marketing": True})
        gpc = make_event(name="content_shared", context=seg, props={"method": "email"}, **ids())
        self.send([gpc], ["dropped"], headers={"Sec-GPC": "1"},
                  warnings={0: [("consent_missing", "$.consent.marketing")]})

    def test_event_needing_no_consent(self):
        e = make_event(name="error_shown", **ids())
        self.send([e], ["stored"], warnings={})
        self.assertTrue(self.row(e)["consented"])

    def test_mixed_batch(self):
        events = [make_event(name="page_viewed", consent=ANALYTICS),
                  make_event(name="page_viewed"),
                  make_event(name="order_placed", consent=ANALYTICS, props={}),
                  make_event(name="error_shown"),
                  make_event(name="content_shared", consent=BOTH, props={"method": "copy_link"})]
        resp = self.send(events, ["stored", "dropped", "rejected", "stored", "stored"])
        self.assertEqual(harness.answer_problems(resp), {2: [("missing_property", "$.props.order_id")]})
        self.assertEqual(harness.answer_problems(resp, "warnings"), {1: [("consent_missing", "$.consent.analytics")]})
        self.assertEqual(set(harness.event_rows(self.db, [e["event_id"] for e in events])),
                         {events[i]["event_id"] for i in (0, 3, 4)})

    def test_sec_gpc_withdraws_marketing(self):
        shared = make_event(name="content_shared", consent=BOTH, props={"method": "email"}, **ids())
        page = make_event(name="page_viewed", consent=BOTH, **ids())
        resp = self.send([shared, page], ["dropped", "stored"], headers={"Sec-GPC": "1"},
                         warnings={0: [("consent_missing", "$.consent.marketing")]})
        # The event granted it: the message says who withdrew it.
        message = resp.body["warnings"][0]["message"]
        self.assertIn("granted but the request's Sec-GPC or DNT header withdrew", message)
        self.assertNotIn("not granted", message)
        self.assertEqual(harness.event_id_counts(self.db, [shared["event_id"]]), {})
        self.assertEqual(self.row(page)["consent"], {"analytics": True, "marketing": False},
                         "the stored consent says what was in force")
        # Without any consent object, GPC still records marketing: false.
        bare = make_event(name="error_shown")
        self.send([bare], ["stored"], headers={"Sec-GPC": "1"})
        self.assertEqual(self.row(bare)["consent"], {"marketing": False})

    def test_sec_gpc_other_values_ignored(self):
        shared = make_event(name="content_shared", consent=BOTH, props={"method": "email"})
        self.send([shared], ["stored"], headers={"Sec-GPC": "0"}, warnings={})
        self.assertEqual(self.row(shared)["consent"], BOTH)

    def test_dnt_ignored_without_honor_dnt(self):
        shared = make_event(name="content_shared", consent=BOTH, props={"method": "email"})
        self.send([shared], ["stored"], headers={"DNT": "1"}, warnings={})
        self.assertEqual(self.row(shared)["consent"], BOTH)

    def test_rejected_row_records_the_override(self):
        """A rejected event keeps the consent the request's headers withdrew,
        for a later replay."""
        bad = make_event(name="page_viewed", consent=BOTH, props={"section": 5})
        resp = self.send([bad], ["rejected"], headers={"Sec-GPC": "1"})
        rows = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual([r["consent_overrides"] for r in rows], [{"marketing": False}])
        resp = self.send([dict(bad, event_id=new_id())], ["rejected"])
        rows = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        self.assertEqual([r["consent_overrides"] for r in rows], [{}])


class AnonymousModeTest(ConsentCase):
    """consent_mode anonymous, honor_dnt true."""

    daemon_config = {"consent_mode": "anonymous", "honor_dnt": True}

    def order(self, consent):
        """An order with identifiers, PII and click ids, all unique to it."""
        t = new_id()[:8]
        self.gclid, self.fbclid, self.msclkid = "Cj" + t, "IwAR" + t, "m-" + t
        self.email = "jo.%s@example.com" % t
        self.URL = ("https://shop.example/thanks?utm_source=news&gclid=%s&Email=jo%%40example.com"
                    "&fbclid=%s&ref=home#done" % (self.gclid, self.fbclid))
        self.REFERRER = "https://ads.example/click?MSCLKID=%s&q=rain+jacket&GCLID=g-9" % self.msclkid
        return make_event(name="order_placed", consent=consent, url=self.URL, referrer=self.REFERRER,
                          props={"order_id": "O-" + t, "email": self.email,
                                 "phone": "+33 6 %s" % t, "total": 12.5}, **ids())

    def test_missing_consent_anonymised(self):
        e = self.order({"marketing": True})
        self.send([e], ["anonymised"], warnings={0: [("consent_missing", "$.consent.analytics")]})
        row = self.row(e)
        self.assertEqual((row["anonymous_id"], row["user_id"], row["session_id"]), (None, None, None),
                         "no identifier is kept")
        self.assertEqual(row["props"], {"order_id": e["props"]["order_id"], "total": 12.5},
                         "every PII property removed, hashed or not")
        self.assertEqual(row["url"], "https://shop.example/thanks?utm_source=news&ref=home#done",
                         "click ids and url_strip_params removed")
        self.assertEqual(row["referrer"], "https://ads.example/click?q=rain+jacket")
        self.assertEqual((row["consented"], row["plan_version"], row["kind"], row["phase"]),
                         (False, PLAN["version"], "macro", "buy"))
        for raw in (e["anonymous_id"], e["user_id"], e["session_id"], self.email, e["props"]["phone"],
                    self.gclid, self.fbclid, self.msclkid):
            self.assertEqual(harness.tables_containing(self.db, raw), {}, "%s stored somewhere" % raw)

    def test_granted_keeps_identifiers(self):
        e = self.order(ANALYTICS)
        self.send([e], ["stored"], warnings={})
        row = self.row(e)
        self.assertEqual((row["anonymous_id"], row["user_id"], row["session_id"]),
                         (e["anonymous_id"], e["user_id"], e["session_id"]))
        self.assertEqual(row["props"], {"order_id": e["props"]["order_id"], "total": 12.5,
                                        "email": harness.pii_hash(self.email, PII_KEY)})
        self.assertEqual(row["url"], "https://shop.example/thanks?utm_source=news&gclid=%s&fbclid=%s&ref=home#done"
                         % (self.gclid, self.fbclid), "click ids kept with consent, url_strip_params not")
        self.assertEqual(row["referrer"], self.REFERRER)
        self.assertTrue(row["consented"])

    def test_cookieless_without_consent_gets_no_id(self):
        granted = make_event(name="page_viewed", consent=ANALYTICS, anonymous_id=None)
        denied = make_event(name="page_viewed", anonymous_id=None)
        self.send([granted, denied], ["stored", "anonymised"])
        self.assertRegex(self.row(granted)["anonymous_id"] or "", r"^v_[0-9a-f]{32}$")
        self.assertIsNone(self.row(denied)["anonymous_id"], "no cookieless id without consent")

    def test_dnt_honoured(self):
        shared = make_event(name="content_shared", consent=BOTH,
                            props={"method": "email", "recipient_email": "friend@example.com"}, **ids())
        page = make_event(name="page_viewed", consent=BOTH, **ids())
        self.send([shared, page], ["anonymised", "stored"], headers={"DNT": "1"},
                  warnings={0: [("consent_missing", "$.consent.marketing")]})
        row = self.row(shared)
        self.assertEqual((row["anonymous_id"], row["consented"], row["props"], row["consent"]),
                         (None, False, {"method": "email"}, {"analytics": True, "marketing": False}))
        self.assertEqual(self.row(page)["consent"], {"analytics": True, "marketing": False})
        self.assertEqual(self.row(page)["anonymous_id"], page["anonymous_id"])

    def assertRejectedWithoutIdentifiers(self, e, problem, props):
        """e (an order of self.order) without consent is answered rejected
        with problem, and kept in rejected_events with props and without
        identifiers, PII or click ids; returns its row."""
        resp = self.send([e], ["rejected"], warnings={0: [("consent_missing", "$.consent.analytics")]})
        self.assertEqual(harness.answer_problems(resp), {0: [problem]})
        (row,) = harness.rejected_rows(self.db, resp.headers["x-request-id"])
        payload = row["payload"]
        for f in ("anonymous_id", "user_id", "session_id"):
            self.assertNotIn(f, payload)
        self.assertEqual(payload["props"], props)
        self.assertIsNone(row["derived_anonymous_id"])
        self.assertNotIn("gclid", payload["url"].lower())
        for raw in (e["anonymous_id"], e["user_id"], self.email, e["props"]["phone"], self.gclid,
                    self.msclkid):
            self.assertEqual(harness.tables_containing(self.db, raw), {}, "%s stored somewhere" % raw)
        return row

    def test_rejected_without_consent_keeps_no_identifiers(self):
        """A rejected event without its consent goes to rejected_events
        without identifiers and without any PII property."""
        e = self.order({})
        del e["props"]["order_id"]
        row = self.assertRejectedWithoutIdentifiers(e, ("missing_property", "$.props.order_id"),
                                                    {"total": 12.5})
        self.assertEqual(sorted(row["redacted"]), ["email", "phone"])

    def test_malformed_without_consent_keeps_no_identifiers(self):
        """The same for an event that does not parse (a ts that is not a
        date): it used to be kept with its ids, PII and click ids."""
        e = dict(self.order({}), ts="yesterday")
        self.assertRejectedWithoutIdentifiers(e, ("invalid_timestamp", "$.ts"),
                                              {"order_id": e["props"]["order_id"], "total": 12.5})

    def test_retried_anonymised_event(self):
        """Through the dedup path (a retried id in the batch) an anonymised
        event is still stored without identifiers and consented false."""
        first = make_event(name="page_viewed", **ids())
        self.send([first], ["anonymised"])
        second = make_event(name="page_viewed", **ids())
        self.send([first, second], ["anonymised", "anonymised"])
        row = self.row(second)
        self.assertEqual((row["anonymous_id"], row["consented"], row["kind"]), (None, False, "page"))
        self.assertEqual(harness.event_id_counts(self.db, [first["event_id"]]), {first["event_id"]: 1})

    def test_reload_to_drop_mode(self):
        """consent_mode is reloadable: after SIGHUP with drop, the same event
        is dropped instead of anonymised."""
        try:
            self.daemon.rewrite_config(consent_mode="drop")
            self.daemon.reload()
            e = make_event(name="page_viewed")
            self.send([e], ["dropped"])
            self.assertEqual(harness.event_id_counts(self.db, [e["event_id"]]), {})
        finally:
            self.daemon.rewrite_config(consent_mode="anonymous")
            self.daemon.reload()
        e = make_event(name="page_viewed")
        self.send([e], ["anonymised"])


if __name__ == "__main__":
    harness.main()
