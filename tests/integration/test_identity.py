#!/usr/bin/env python3
"""Identity verification and server keys: a browser's identify claim to a
user id links only as the site's identity_verification allows (a valid
HMAC-SHA256 user_hash; none needed for a secret server key), an attacker's
claim to a verified user's id neither joins the victim's person nor lets
erasing the attacker erase the victim, and a server key is refused from a
browser page and not judged by its User-Agent."""
import hashlib
import hmac
import secrets

import harness
from harness import BLOG_KEY, SHOP_KEY, make_event, psql, psql_value
from admin_api import erase, key_entry, new_api_key

SHOP_SECRET = "shop-identity-secret-0123456789abcdef"
BLOG_SECRET = "blog-identity-secret-0123456789abcdef"
SERVER_KEY = "sk_shop_" + secrets.token_hex(16)
ADMIN = new_api_key("ak_admin")
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

SITES = [
    dict(harness.SITES[0], identity_verification="optional", identity_secret=SHOP_SECRET,
         server_keys=[hashlib.sha256(SERVER_KEY.encode()).hexdigest()]),
    dict(harness.SITES[1], identity_verification="required", identity_secret=BLOG_SECRET),
]


def uid(label):
    return "%s-%s" % (label, secrets.token_hex(6))


def user_hash(user, secret=SHOP_SECRET):
    """What a site's backend computes: HMAC-SHA256(user id, secret) in hex."""
    return hmac.new(secret.encode(), user.encode(), hashlib.sha256).hexdigest()


def identify(user, anon, **fields):
    ev = {"type": "identify", "event_id": harness.new_id(), "user_id": user, "anonymous_id": anon}
    ev.update(fields)
    return ev


class IdentityTest(harness.DaemonTestCase):
    daemon_config = {"sites": SITES, "api_keys": [key_entry("privacy-officer", "admin", ADMIN)]}

    def send(self, events, key=SHOP_KEY, headers=None):
        resp = self.post({"batch": events}, key=key, headers=headers)
        self.assertAccepted(resp, len(events))
        return resp

    def codes(self, resp):
        return [w["code"] for w in resp.body.get("warnings", [])]

    def identity(self, column, kind, id_, site):
        rows = psql(self.db, "SELECT %s FROM identities WHERE site_id = :'s'"
                             " AND kind = :'k' AND id = :'i'" % column, s=site, k=kind, i=id_)
        return rows[0][0] if rows else None

    def person(self, kind, id_, site="shop"):
        return self.identity("person_id", kind, id_, site)

    def verified(self, kind, id_, site="shop"):
        return self.identity("verified", kind, id_, site)

    def event_people(self, anon):
        return {r[0] for r in psql(self.db, "SELECT DISTINCT person_id FROM events"
                                            " WHERE site_id = 'shop' AND anonymous_id = :'a'", a=anon)}

    def victim(self):
        """A victim who logged in with a valid hash, and their events."""
        user, anon = uid("victim"), uid("victim-anon")
        resp = self.send([make_event(anonymous_id=anon),
                          identify(user, anon, user_hash=user_hash(user)),
                          make_event(anonymous_id=anon, user_id=user, user_hash=user_hash(user))])
        self.assertEqual(self.codes(resp), [])
        self.assertEqual(self.verified("user", user), "t")
        self.assertEqual(self.verified("anonymous", anon), "t")
        return user, anon

    def test_takeover_without_hash_is_refused(self):
        user, vanon = self.victim()
        victim_person = self.person("user", user)
        attacker = uid("attacker")
        self.send([make_event(anonymous_id=attacker)])
        self.send([identify(user, attacker), make_event(anonymous_id=attacker, user_id=user)])
        self.assertNotEqual(self.person("anonymous", attacker), victim_person)
        self.assertNotIn(victim_person, self.event_people(attacker))
        self.assertEqual(self.event_people(vanon), {victim_person})
        # The victim's person is still only the victim's ids.
        self.assertEqual(psql_value(self.db, "SELECT count(*) FROM identities WHERE site_id = 'shop'"
                                             " AND person_id = :'p'", p=victim_person), "2")
        # Erasing the attacker leaves every victim event in place.
        before = psql_value(self.db, "SELECT count(*) FROM events WHERE site_id = 'shop'"
                                     " AND anonymous_id = :'a'", a=vanon)
        resp = erase(self.daemon, ADMIN, attacker, site="shop")
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        # The refused claim left the attacker a person of its own: that is
        # what goes, with the events that carry the claimed user id.
        self.assertEqual(resp.body["scope"], "person")
        self.assertEqual(resp.body["erased"]["linked_ids"], 1)
        self.assertEqual(resp.body["erased"]["events"], 3)
        self.assertEqual(psql_value(self.db, "SELECT count(*) FROM events WHERE site_id = 'shop'"
                                             " AND anonymous_id = :'a'", a=vanon), before)
        self.assertEqual(before, "3")
        self.assertEqual(psql_value(self.db, "SELECT count(*) FROM events WHERE site_id = 'shop'"
                                             " AND anonymous_id = :'a'", a=attacker), "0")
        self.assertEqual(self.person("user", user), victim_person)

    def test_claim_before_the_owner_verified_is_erased_alone(self):
        """The attacker claims the user id first (unverified, so it links in
        optional mode); the owner then logs in verified. Erasing the
        attacker's device takes only that device's data."""
        user, attacker, vanon = uid("victim"), uid("attacker"), uid("victim-anon")
        self.send([identify(user, attacker), make_event(anonymous_id=attacker, user_id=user)])
        self.send([identify(user, vanon, user_hash=user_hash(user)),
                   make_event(anonymous_id=vanon, user_id=user, user_hash=user_hash(user)),
                   make_event(anonymous_id=vanon)])
        person = self.person("user", user)
        self.assertEqual(self.person("anonymous", attacker), person)
        self.assertEqual(self.verified("anonymous", attacker), "f")
        resp = erase(self.daemon, ADMIN, attacker, site="shop")
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertEqual(resp.body["scope"], "id")
        self.assertEqual(resp.body["erased"], {"linked_ids": 1, "events": 2, "rejected_events": 0})
        self.assertEqual(psql_value(self.db, "SELECT count(*) FROM events WHERE site_id = 'shop'"
                                             " AND anonymous_id = :'a'", a=attacker), "0")
        self.assertEqual(psql_value(self.db, "SELECT count(*) FROM events WHERE site_id = 'shop'"
                                             " AND anonymous_id = :'a'", a=vanon), "3")
        self.assertIsNone(self.person("anonymous", attacker))
        self.assertEqual(self.person("user", user), person)
        self.assertEqual(self.person("anonymous", vanon), person)

    def test_wrong_hash_is_refused_with_a_warning(self):
        user, _ = self.victim()
        attacker = uid("attacker")
        resp = self.send([identify(user, attacker, user_hash=user_hash(user, "not-the-secret-000000"))])
        self.assertEqual(self.codes(resp), ["identity_unverified"])
        self.assertNotEqual(self.person("anonymous", attacker), self.person("user", user))
        self.assertIsNone(psql_value(self.db, "SELECT user_id FROM events WHERE site_id = 'shop'"
                                              " AND anonymous_id = :'a'", a=attacker) or None)

    def test_rejected_event_keeps_no_hash(self):
        user = uid("user")
        resp = self.post(make_event(name="Bad_Name", user_id=user, user_hash=user_hash(user)))
        self.assertAccepted(resp, 0, [0])
        self.assertEqual(psql_value(self.db, "SELECT count(*) FROM rejected_events WHERE site_id = 'shop'"
                                             " AND payload->>'user_id' = :'u'"
                                             " AND NOT payload ? 'user_hash'", u=user), "1")

    def test_optional_without_hash_links_unverified(self):
        user, anon = uid("user"), uid("anon")
        resp = self.send([identify(user, anon)])
        self.assertEqual(self.codes(resp), [])
        self.assertEqual(self.person("anonymous", anon), self.person("user", user))
        self.assertEqual(self.verified("user", user), "f")

    def test_required_drops_unverified_user_id(self):
        user, anon = uid("user"), uid("anon")
        resp = self.send([identify(user, anon)], key=BLOG_KEY)
        self.assertEqual(self.codes(resp), ["identity_unverified"])
        self.assertIsNone(self.person("user", user, site="blog"))
        self.assertIsNotNone(self.person("anonymous", anon, site="blog"))
        resp = self.send([identify(user, anon, user_hash=user_hash(user, BLOG_SECRET))], key=BLOG_KEY)
        self.assertEqual(self.codes(resp), [])
        self.assertEqual(self.person("user", user, site="blog"),
                         self.person("anonymous", anon, site="blog"))
        self.assertEqual(self.verified("user", user, site="blog"), "t")

    def test_segment_hash_in_context(self):
        user, anon = uid("user"), uid("anon")
        resp = harness.http_request("POST", self.daemon.url("/v1/identify"), body={
            "writeKey": BLOG_KEY, "userId": user, "anonymousId": anon,
            "context": {"milepost": {"user_hash": user_hash(user, BLOG_SECRET)}}})
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertEqual(self.verified("user", user, site="blog"), "t")

    def test_server_key(self):
        user, anon = uid("user"), uid("anon")
        resp = self.send([make_event(anonymous_id=anon, user_id=user), identify(user, anon)],
                         key=SERVER_KEY, headers={"User-Agent": GOOGLEBOT})
        self.assertEqual(resp.body["results"], ["stored", "stored"])
        self.assertEqual(self.codes(resp), [])
        self.assertEqual(psql_value(self.db, "SELECT bool_or(bot)::text FROM events WHERE site_id = 'shop'"
                                             " AND anonymous_id = :'a'", a=anon), "false")
        self.assertEqual(self.verified("user", user), "t")
        self.assertEqual(self.person("anonymous", anon), self.person("user", user))
        resp = self.post(make_event(), key=SERVER_KEY, headers={"Origin": "https://shop.example"})
        self.assertError(resp, 403, "server_key_in_browser")


if __name__ == "__main__":
    harness.main()
