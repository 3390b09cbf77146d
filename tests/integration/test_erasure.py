#!/usr/bin/env python3
"""DELETE /api/v1/people/{id}: erases every event and rejected event of a
person in one site, the person being the one identities give the id (with the
people merged into it and every id it is known by), and leaves an audit row
that names no id. Erasure reads the person's rows by index, not the site's
events."""

import json
import secrets
import time

import harness
from harness import BLOG_KEY, SHOP_KEY, make_event, psql, psql_value, utcnow
from admin_api import erase, key_entry, new_api_key, parse_time, rows_mentioning

ADMIN = new_api_key("ak_admin")
SHOP_ADMIN = new_api_key("ak_shopadmin")
API_KEYS = [key_entry("privacy-officer", "admin", ADMIN),
            key_entry("shop-privacy", "admin", SHOP_ADMIN, sites=["shop"])]


def uid(label):
    """A unique id, easy to find in any table."""
    return "%s-%s" % (label, secrets.token_hex(6))


def carrying(ids, pairs):
    """How many of the (anonymous_id, user_id) pairs carry one of ids."""
    return sum(1 for a, u in pairs if a in ids or u in ids)


class ErasureTest(harness.DaemonTestCase):

    # No query index: its catch-ups read the events the tests insert, and
    # test_erasure_does_not_scan_events counts the erasure's reads alone
    # (test_engines_agree.py erases with the index on).
    daemon_config = {"api_keys": API_KEYS, "query_index": False}

    def store(self, pairs, key=SHOP_KEY, site_id="shop"):
        """Stores one event per (anonymous_id, user_id) pair."""
        events = [make_event(anonymous_id=a, user_id=u) for a, u in pairs]
        self.assertAccepted(self.post({"batch": events}, key=key), len(events))
        ids = [e["event_id"] for e in events]
        self.assertEqual(harness.event_id_counts(self.db, ids, site_id), {i: 1 for i in ids})

    def reject(self, pairs, key=SHOP_KEY):
        """One rejected event (bad name) per (anonymous_id, user_id) pair."""
        events = [make_event(name="Bad_Name", anonymous_id=a, user_id=u) for a, u in pairs]
        self.assertAccepted(self.post({"batch": events}, key=key), 0, range(len(events)))

    def events_of(self, person, site_id="shop"):
        return int(psql_value(self.db, "SELECT count(*) FROM events WHERE site_id = :'s'"
                                       " AND (anonymous_id = :'p' OR user_id = :'p')", s=site_id, p=person))

    def rejected_of(self, person, site_id="shop"):
        return int(psql_value(self.db, "SELECT count(*) FROM rejected_events WHERE site_id = :'s'"
                                       " AND (payload->>'anonymous_id' = :'p' OR payload->>'user_id' = :'p'"
                                       " OR derived_anonymous_id = :'p')", s=site_id, p=person))

    def erase_ok(self, person, key=ADMIN, site="shop"):
        resp = erase(self.daemon, key, person, site=site)
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertJsonType(resp)
        self.assertRequestId(resp)
        self.assertEqual(set(resp.body), {"site", "scope", "scope_reason", "erased", "audit_id", "erased_at"}, "%r" % (resp.body,))
        self.assertEqual(set(resp.body["erased"]), {"linked_ids", "events", "rejected_events"})
        self.assertEqual(resp.body["scope"], "person")
        return resp

    def assertGone(self, ids):
        for person in ids:
            self.assertEqual(rows_mentioning(self.db, person), {}, "rows still mention %s" % person)

    def linked_person(self):
        """Three people: {a1, u1, a2}; {u2, a4}, whose login on a2 was
        refused (a2's person has a user id already: a shared computer), so
        that the (a2, u2) event is u2's but carries a2; and {a3, u3}. u9 is
        only on a rejected event, with a4."""
        a1, u1, a2, u2, a4 = uid("a1"), uid("u1"), uid("a2"), uid("u2"), uid("a4")
        a3, u3, u9 = uid("a3"), uid("u3"), uid("u9")
        pairs = [(a1, None), (a1, None), (a1, u1), (None, u1), (a2, u1), (a2, None), (a2, u2),
                 (None, u2), (a4, u2), (a3, u3), (a3, None), (None, u3)]
        self.store(pairs)
        rejected = [(a1, None), (None, u2), (a4, u9), (a3, None), (None, u3)]
        self.reject(rejected)
        people = [{a1, u1, a2}, {u2, a4}, {a3, u3}]
        for person in people:
            n = int(psql_value(self.db, "SELECT count(DISTINCT person_id) FROM identities"
                                        " WHERE site_id = 'shop' AND id = ANY(:'ids')",
                               ids=harness.pg_array(person)))
            self.assertEqual(n, 1, "not one person: %s" % person)
        return locals()

    def assertErased(self, p, start, person):
        """Erases start, whose person is person (a set of ids of p): the
        events and rejected events carrying its ids go, the others stay."""
        others = ({p["u9"]} | set().union(*p["people"])) - person
        before = {o: (self.events_of(o), self.rejected_of(o)) for o in others}
        total_before = harness.count_rows(self.db)
        for person_id in person:
            self.assertTrue(rows_mentioning(self.db, person_id), "the check below would be vacuous")

        resp = self.erase_ok(start)
        n_events, n_rejected = carrying(person, p["pairs"]), carrying(person, p["rejected"])
        self.assertEqual(resp.body["site"], "shop")
        self.assertEqual(resp.body["erased"], {"linked_ids": len(person), "events": n_events,
                                               "rejected_events": n_rejected})
        self.assertGone(person)
        for other, (n, n_rej) in before.items():
            erased = sum(1 for a, u in p["pairs"] if other in (a, u) and (a in person or u in person))
            self.assertEqual(self.events_of(other), n - erased, "someone else's events were erased")
            erased = sum(1 for a, u in p["rejected"] if other in (a, u) and (a in person or u in person))
            self.assertEqual(self.rejected_of(other), n_rej - erased)
        after = harness.count_rows(self.db)
        self.assertEqual(after["events"], total_before["events"] - n_events)
        self.assertEqual(after["rejected_events"], total_before["rejected_events"] - n_rejected)

    def test_erase_linked_ids(self):
        p = self.linked_person()
        # The (a2, u2) event goes with a2; u2 and a4 are someone else.
        self.assertErased(p, p["a1"], p["people"][0])
        self.assertEqual(self.events_of(p["u2"]), 2)

    def test_erase_from_the_middle(self):
        p = self.linked_person()
        self.assertErased(p, p["u2"], p["people"][1])
        self.assertEqual((self.events_of(p["a1"]), self.events_of(p["a2"])), (3, 2))
        self.assertEqual(self.events_of(p["a3"]), 2)

    def test_walk_through_identities(self):
        """A and B log in as U from two devices: B's person, which had
        events of its own, is merged into U's. Erasing any of the three ids
        erases all three, and the merge; C is untouched."""
        for start in ("a", "u", "b"):
            with self.subTest(start=start):
                ids = {k: uid(k) for k in ("a", "u", "b", "c")}
                a, u, b, c = ids["a"], ids["u"], ids["b"], ids["c"]
                self.store([(a, None), (a, None), (c, None)])
                self.store([(b, None)])
                self.store([(a, u)])
                merged = psql_value(self.db, "SELECT person_id FROM identities"
                                             " WHERE site_id = 'shop' AND id = :'b'", b=b)
                self.store([(b, u), (b, None)])
                self.assertEqual(int(psql_value(self.db, "SELECT count(*) FROM person_merges"
                                                         " WHERE from_person = :'m'", m=merged)), 1)
                resp = self.erase_ok(ids[start])
                self.assertEqual(resp.body["erased"], {"linked_ids": 3, "events": 6, "rejected_events": 0})
                self.assertGone({a, u, b})
                self.assertEqual(int(psql_value(self.db, "SELECT count(*) FROM person_merges"
                                                         " WHERE from_person = :'m' OR into_person = :'m'",
                                                m=merged)), 0)
                self.assertEqual(int(psql_value(self.db, "SELECT count(*) FROM events WHERE person_id = :'m'",
                                                m=merged)), 0)
                self.assertEqual(self.events_of(c), 1)

    def events_read(self):
        """(rows read by sequential scans, scans of any kind) of the events
        partitions so far, as PostgreSQL's statistics have them."""
        row = psql(self.db, "SELECT COALESCE(sum(seq_tup_read), 0), COALESCE(sum(seq_scan), 0)"
                            " + COALESCE(sum(idx_scan), 0) FROM pg_stat_user_tables WHERE relid IN"
                            " (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'events'::regclass)")[0]
        return int(row[0]), int(row[1])

    def test_erasure_does_not_scan_events(self):
        """With 200,000 other events in the site, erasing a person reads
        none of them: each statement finds the person's rows by index.
        (Before migration 0011 each step of the walk read them all, and a
        site of a few million events outlasted the query pool's statement
        timeout.) A backend reports its statistics within a second of
        going idle; the check waits for the erasure's to arrive."""
        n = 200000
        psql(self.db, "INSERT INTO events (site_id, event_id, name, ts, received_at, anonymous_id,"
                      " user_id, person_id)"
                      " SELECT 'shop', gen_random_uuid(), 'page_view', t, t, 'bulk-' || g % 50000,"
                      " CASE WHEN g % 10 = 0 THEN 'bulkuser-' || g % 5000 END, -1 - g % 50000"
                      " FROM generate_series(1, :'n') g,"
                      " LATERAL (SELECT now() - make_interval(secs => g % 86400)) AS x(t)", n=str(n))
        a, u, b = uid("scan-a"), uid("scan-u"), uid("scan-b")
        self.store([(a, None), (a, u), (b, u), (b, None)])
        self.reject([(a, None)])
        psql(self.db, "ANALYZE events; ANALYZE identities; ANALYZE person_merges; ANALYZE rejected_events")
        time.sleep(1.5)     # the statistics of the store and the ANALYZE settle
        read_before, scans_before = self.events_read()

        resp = self.erase_ok(b)
        self.assertEqual(resp.body["erased"], {"linked_ids": 3, "events": 4, "rejected_events": 1})
        deadline = time.monotonic() + 10
        while self.events_read()[1] == scans_before and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)
        read, scans = self.events_read()
        self.assertGreater(scans, scans_before, "the erasure's statistics never arrived")
        self.assertLess(read - read_before, 1000,
                        "erasing one person read %d rows of events" % (read - read_before))
        self.assertGone({a, u, b})
        self.assertEqual(int(psql_value(self.db, "SELECT count(*) FROM events WHERE anonymous_id LIKE 'bulk-%'")), n)

    def test_audit_row(self):
        p = self.linked_person()
        before = utcnow()
        resp = self.erase_ok(p["a2"], key=SHOP_ADMIN)
        after = utcnow()
        rows = psql(self.db, "SELECT requested_by, request_id, site_id, counts::text,"
                             " to_json(requested_at) #>> '{}' FROM erasure_audit WHERE id = :'i'",
                    i=str(resp.body["audit_id"]))
        self.assertEqual(len(rows), 1, "audit row %s" % resp.body["audit_id"])
        requested_by, request_id, site_id, counts, requested_at = rows[0]
        self.assertEqual(requested_by, "shop-privacy")
        self.assertEqual(request_id, resp.headers["x-request-id"])
        self.assertEqual(site_id, "shop")
        self.assertEqual(json.loads(counts), resp.body["erased"])
        self.assertEqual(parse_time(requested_at), parse_time(resp.body["erased_at"]))
        at = parse_time(resp.body["erased_at"])
        self.assertTrue(before.timestamp() - 5 <= at.timestamp() <= after.timestamp() + 5, at)
        # Neither the audit row nor the log names the person.
        person = p["people"][0]
        self.assertGone(person)
        log = self.daemon.log()
        for person_id in person:
            self.assertNotIn(person_id, log, "the log names an erased id")

    def test_unknown_id(self):
        before = harness.count_rows(self.db)
        audits = int(psql_value(self.db, "SELECT count(*) FROM erasure_audit"))
        resp = self.erase_ok(uid("nobody"))
        # The id itself is the only one "linked".
        self.assertEqual(resp.body["erased"], {"linked_ids": 1, "events": 0, "rejected_events": 0})
        self.assertEqual(harness.count_rows(self.db), before)
        self.assertEqual(int(psql_value(self.db, "SELECT count(*) FROM erasure_audit")), audits + 1)

    def test_other_site_untouched(self):
        person, blog_user, shop_alias = uid("both"), uid("bloguser"), uid("alias")
        self.store([(person, None), (person, None)])
        self.reject([(person, None)])
        self.store([(person, None), (person, blog_user)], key=BLOG_KEY, site_id="blog")
        self.reject([(person, None)], key=BLOG_KEY)
        self.store([(None, blog_user), (shop_alias, None)])  # linked only in the blog
        resp = self.erase_ok(person)
        self.assertEqual(resp.body["erased"], {"linked_ids": 1, "events": 2, "rejected_events": 1})
        self.assertEqual((self.events_of(person), self.rejected_of(person)), (0, 0))
        self.assertEqual(self.events_of(person, "blog"), 2, "the blog's events were erased")
        self.assertEqual(self.rejected_of(person, "blog"), 1, "the blog's rejected events were erased")
        self.assertEqual(self.events_of(blog_user), 1, "linked through another site's events")
        # And the other way round.
        resp = self.erase_ok(person, site="blog")
        self.assertEqual(resp.body["erased"], {"linked_ids": 2, "events": 2, "rejected_events": 1})
        self.assertEqual(self.events_of(blog_user), 1)
        self.assertGone({person})

    def test_rejected_only_ids(self):
        person = uid("rejonly")
        self.reject([(person, None), (None, person), (person, None)])
        resp = self.erase_ok(person)
        self.assertEqual(resp.body["erased"], {"linked_ids": 1, "events": 0, "rejected_events": 3})
        self.assertGone({person})

    def test_cookieless_id(self):
        ua = "erasure-test-agent/" + secrets.token_hex(4)
        headers = {"User-Agent": ua}
        stored = [make_event(anonymous_id=None) for _ in range(2)]
        bad = make_event(name="Bad_Name", anonymous_id=None)
        self.assertAccepted(self.post({"batch": stored + [bad]}, headers=headers), 2, [2])
        vid = harness.visitor_id(harness.todays_salt(self.db), "shop", "127.0.0.1", ua)
        self.assertEqual(self.events_of(vid), 2)
        self.assertEqual(self.rejected_of(vid), 1)
        resp = self.erase_ok(vid)
        self.assertEqual(resp.body["erased"], {"linked_ids": 1, "events": 2, "rejected_events": 1})
        self.assertGone({vid})

    def test_replayed_rows_go_too(self):
        person = uid("replayed")
        self.reject([(person, None)])
        psql(self.db, "UPDATE rejected_events SET replayed_at = now(), replayed_event_id = gen_random_uuid()"
                      " WHERE payload->>'anonymous_id' = :'p'", p=person)
        self.store([(person, None)])
        resp = self.erase_ok(person)
        self.assertEqual(resp.body["erased"], {"linked_ids": 1, "events": 1, "rejected_events": 1})
        self.assertGone({person})

    def test_id_length(self):
        for person in ("x" * 255 + "1", "\u00e9" * 128):   # 256 bytes
            with self.subTest(length=len(person.encode())):
                self.store([(person, None)])
                resp = self.erase_ok(person)
                self.assertEqual(resp.body["erased"]["events"], 1)
                self.assertEqual(self.events_of(person), 0)
        for person in ("x" * 257, "\u00e9" * 129, "y" * 5000):
            with self.subTest(length=len(person.encode())):
                self.assertError(erase(self.daemon, ADMIN, person, site="shop"), 400, "invalid_parameter")
                # docs/api.md: checked before the key.
                self.assertError(erase(self.daemon, None, person, site="shop"), 400, "invalid_parameter")

    def test_ids_needing_percent_encoding(self):
        for person in ("ann smith@example.com", "id?with=query&chars", "100%", "caf\u00e9#1"):
            with self.subTest(person=person):
                self.store([(person, None), (person, None)])
                resp = erase(self.daemon, ADMIN, person, site="shop")
                self.assertEqual(resp.status, 200, "%r" % (resp,))
                self.assertEqual(resp.body["erased"]["events"], 2)
                self.assertEqual(self.events_of(person), 0)

    def test_id_with_slash(self):
        """Ingestion accepts ids with "/", so erasure must too (sent as
        %2F or raw): everything of that person goes."""
        person = uid("team/alice")
        self.store([(person, None), (None, person)])
        resp = erase(self.daemon, ADMIN, person, site="shop")
        self.assertEqual(resp.status, 200, resp.body)
        self.assertEqual(resp.body["erased"]["events"], 2)
        self.assertEqual(self.events_of(person), 0)

    def test_path_without_id(self):
        self.assertError(harness.http_request("DELETE", self.daemon.url("/api/v1/people/?site=shop"),
                                              headers={"Authorization": "Bearer " + ADMIN}),
                         404, "not_found")

    def test_erased_event_not_brought_back_by_a_retry(self):
        """event_ids outlive the erasure: a retried event (same event_id)
        within the dedup window is answered but not stored again."""
        person = uid("retrier")
        e = make_event(anonymous_id=person)
        self.assertAccepted(self.post(e), 1)
        self.assertEqual(self.erase_ok(person).body["erased"]["events"], 1)
        self.assertAccepted(self.post(e), 1)
        self.assertEqual(self.events_of(person), 0, "a retry brought an erased event back")
        self.assertGone({person})

    def test_erasure_forgets_the_claims(self):
        """The event_ids rows that stay lose their claim (a hash of the
        person's ids); a repeat of the id is then a retry, whatever it claims."""
        person = uid("claimer")
        e = make_event(anonymous_id=person, user_id=uid("claimer-user"))
        kept = make_event()
        self.assertAccepted(self.post({"batch": [e, kept]}), 2)
        claims = "SELECT fingerprint IS NULL FROM event_ids WHERE event_id = :'i'"
        self.assertEqual(psql(self.db, claims, i=e["event_id"]), [["f"]])
        self.assertEqual(self.erase_ok(person).body["erased"]["events"], 1)
        self.assertEqual(psql(self.db, claims, i=e["event_id"]), [["t"]])
        self.assertEqual(psql(self.db, claims, i=kept["event_id"]), [["f"]], "another person's claim stays")
        resp = self.post(dict(e, anonymous_id=uid("someone-else")))
        self.assertAccepted(resp, 1)
        self.assertEqual(resp.body["results"], ["stored"])
        self.assertEqual(self.events_of(person), 0)


if __name__ == "__main__":
    harness.main()
