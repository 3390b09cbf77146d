#!/usr/bin/env python3
"""Event-level errors: reported in the 202 answer with index and path, stored
in `rejected_events` with payload and reasons, while the valid events of the
same batch land in `events`."""

import json
import re
import time
from datetime import timedelta

import harness
from harness import BLOG_KEY, SHOP_KEY, make_event, new_id, psql, rfc3339, utcnow


class Prefix(str):
    """An expected path that only has to start with this text (for paths the
    docs leave open, such as which key inside props was too deep)."""


class Bad:
    """Expectation for an invalid event: one error with one of these codes at
    one of these paths (a Prefix matches the paths starting with it)."""

    def __init__(self, codes, paths):
        self.codes = (codes,) if isinstance(codes, str) else tuple(codes)
        self.paths = (paths,) if isinstance(paths, str) else tuple(paths)

    def matches(self, error):
        path = error.get("path", "")
        return error.get("code") in self.codes and any(
            path.startswith(p) if isinstance(p, Prefix) else path == p for p in self.paths)

    def __repr__(self):
        return "%s at %s" % ("|".join(self.codes), "|".join(
            p + "*" if isinstance(p, Prefix) else p for p in self.paths))


def nested(depth, leaf=1):
    """{"k1": {"k2": ... {"kN": leaf}}}: a value N keys below."""
    for i in range(depth, 0, -1):
        leaf = {"k%d" % i: leaf}
    return leaf


def ev(**fields):
    return make_event(**fields)


# Codes only the tracking plan gives (wrong_type and too_long come from the
# native field checks too, which run before the name is looked at).
PLAN_CODES = {"name_format", "unknown_event", "missing_property", "not_in_enum", "pattern_mismatch",
              "out_of_range", "unexpected_property", "unsupported_version", "event_sunset"}


class RejectedEventTest(harness.DaemonTestCase):

    def check_batch(self, items, key=SHOP_KEY, site_id="shop"):
        """Post [(event, None | Bad), ...] as one batch and check the answer and
        both tables. Valid events must be dicts with an event_id."""
        batch = [e for e, _ in items]
        expected_bad = {i: exp for i, (_, exp) in enumerate(items) if exp is not None}
        valid = [e for e, exp in items if exp is None]
        before = time.time()
        resp = self.post({"batch": batch}, key=key)
        after = time.time()
        rejected = self.assertAccepted(resp, len(valid), expected_bad.keys())

        # The answer: one error per invalid event, the expected one.
        for entry in rejected:
            i = entry["index"]
            errors = entry.get("errors")
            self.assertIsInstance(errors, list, "errors of %r" % (entry,))
            self.assertEqual(len(errors), 1, "event %d %r: expected one error (%r), got %r"
                             % (i, batch[i], expected_bad[i], errors))
            self.assertTrue(expected_bad[i].matches(errors[0]), "event %d %r: expected %r, got %r"
                            % (i, batch[i], expected_bad[i], errors[0]))
            self.assertIsInstance(errors[0].get("message"), str)
            self.assertTrue(errors[0]["message"].strip(), "empty message in %r" % (entry,))

        # events: the valid ones, once each; none of the invalid ones.
        ids = [e["event_id"] for e in valid]
        self.assertEqual(harness.event_id_counts(self.db, ids, site_id), {i: 1 for i in ids},
                         "valid events of the batch stored once each")
        bad_ids = [e["event_id"] for i, e in enumerate(batch) if i in expected_bad and isinstance(e, dict)
                   and re.fullmatch(r"[0-9a-f-]{36}", str(e.get("event_id", "")))]
        if bad_ids:
            self.assertEqual(psql(self.db, "SELECT event_id FROM events WHERE event_id = ANY (:'ids'::uuid[])",
                                  ids=harness.pg_array(bad_ids)), [], "rejected events must not be in events")

        # rejected_events: one row per rejected event, tied to the request.
        request_id = resp.headers["x-request-id"]
        rows = psql(self.db, "SELECT event_index, site_id, payload::text, errors::text,"
                             " extract(epoch FROM received_at) FROM rejected_events"
                             " WHERE request_id = :'r' ORDER BY event_index", r=request_id)
        self.assertEqual([int(r[0]) for r in rows], sorted(expected_bad),
                         "rejected_events rows of request %s" % request_id)
        answer = {e["index"]: e["errors"] for e in rejected}
        # The plan's verdict columns: the name, each code once, not quarantined.
        for row in harness.rejected_rows(self.db, request_id):
            index = row["event_index"]
            codes = [e["code"] for e in answer[index]]
            self.assertEqual(row["error_codes"], sorted(set(codes), key=codes.index),
                             "error_codes of event %d" % index)
            self.assertFalse(row["quarantined"])
            name = batch[index].get("name") if isinstance(batch[index], dict) else None
            if set(codes) & PLAN_CODES:
                self.assertEqual(row["event_name"], name, "event_name of event %d" % index)
            else:  # refused before the plan: the name may not be known
                self.assertIn(row["event_name"], (None, name), "event_name of event %d" % index)
        for index, row_site, payload, errors, received_at in rows:
            index = int(index)
            self.assertEqual(row_site, site_id)
            self.assertEqual(json.loads(payload), batch[index], "payload of event %d" % index)
            stored = json.loads(errors)
            self.assertIsInstance(stored, list, "errors column of event %d: %r" % (index, stored))
            self.assertEqual([(e.get("code"), e.get("path")) for e in stored],
                             [(e["code"], e["path"]) for e in answer[index]],
                             "stored reasons of event %d" % index)
            self.assertTrue(before - 5 <= float(received_at) <= after + 5, "received_at %s" % received_at)
        return resp

    def test_not_an_object(self):
        self.check_batch([(ev(), None), (42, Bad("not_an_object", "$")),
                          ("page_view", Bad("not_an_object", "$")), (None, Bad("not_an_object", "$")),
                          ([ev()], Bad("not_an_object", "$")), (True, Bad("not_an_object", "$")),
                          (ev(), None)])

    def test_missing_field(self):
        self.check_batch([
            (ev(), None),
            (ev(name=None), Bad("missing_field", "$.name")),
            (ev(name=""), Bad("missing_field", "$.name")),      # empty strings count as absent
            (ev(name=None, anonymous_id=None), Bad("missing_field", "$.name")),
            # Without anonymous_id and user_id the event gets a cookieless id.
            (ev(anonymous_id=None), None),
            (ev(anonymous_id=None, props={"user_id": "u1"}), None),
            (ev(anonymous_id=None, user_id="user-1"), None),
            (ev(user_id="user-2"), None),
        ])

    def test_invalid_type(self):
        self.check_batch([
            (ev(name=123), Bad("wrong_type", "$.name")),
            (ev(props="not an object"), Bad("wrong_type", "$.props")),
            (ev(props=[1, 2]), Bad("wrong_type", "$.props")),
            (ev(), None),
            (ev(anonymous_id=None, user_id=42), Bad("wrong_type", "$.user_id")),
            (ev(anonymous_id=["a"]), Bad("wrong_type", "$.anonymous_id")),
            (ev(session_id={}), Bad("wrong_type", "$.session_id")),
            (ev(url=True), Bad("wrong_type", "$.url")),
            (ev(consent="all"), Bad("wrong_type", "$.consent")),
            (ev(consent={"analytics": "yes"}), Bad("wrong_type", ("$.consent.analytics", "$.consent"))),
            (ev(props={"any": [1, "two", None, {"x": False}], "n": 1.5}, consent={"analytics": True}), None),
        ])

    def test_invalid_name(self):
        """The default plan's naming rule: snake_case, at least two words."""
        items = [(ev(name=n), Bad("name_format", "$.name"))
                 for n in ("PageView", "page-view", "1st_visit", "page__view", "page_view_",
                           "_page", "page view", "pagé", "a", "signup", "a" * 64)]
        items += [(ev(name=n), None) for n in ("a_b", "page_view", "step2_done", "a" * 31 + "_" + "b" * 32)]
        items.append((ev(name="a" * 32 + "_" + "b" * 32), Bad(("name_format", "too_long"), "$.name")))
        self.check_batch(items)

    def test_invalid_event_id(self):
        self.check_batch([
            (ev(event_id="not-a-uuid"), Bad("invalid_event_id", "$.event_id")),
            (ev(event_id="12345678-1234-1234-1234-12345678901"), Bad("invalid_event_id", "$.event_id")),
            (ev(event_id="g2345678-1234-1234-1234-123456789012"), Bad("invalid_event_id", "$.event_id")),
            (ev(event_id=new_id() + "0"), Bad("invalid_event_id", "$.event_id")),
            (ev(), None),
        ])

    def test_invalid_timestamp(self):
        self.check_batch([
            (ev(ts="yesterday"), Bad("invalid_timestamp", "$.ts")),
            (ev(ts="2024-01-01T10:00:00"), Bad("invalid_timestamp", "$.ts")),  # no offset
            (ev(ts="2024-02-30T10:00:00Z"), Bad("invalid_timestamp", "$.ts")),
            (ev(ts="2024-01-01T25:00:00Z"), Bad("invalid_timestamp", "$.ts")),
            (ev(), None),
            (ev(sent_at="2024-13-01T00:00:00Z"), Bad("invalid_timestamp", "$.sent_at")),
            (ev(sent_at="now"), Bad("invalid_timestamp", "$.sent_at")),
            (ev(ts=rfc3339(utcnow() - timedelta(minutes=5), "seconds"),
                sent_at=rfc3339(utcnow(), "microseconds")), None),
        ])

    def test_timestamp_out_of_range(self):
        """Before 2000 is refused; older than max_event_age_days (31) is
        too_old; a time ahead of the arrival is clamped, not refused."""
        now = utcnow()
        ahead = [ev(ts=rfc3339(now + timedelta(hours=25))), ev(ts="2150-01-01T00:00:00Z")]
        self.check_batch([
            (ev(ts="1999-12-31T23:59:59Z"), Bad("timestamp_out_of_range", "$.ts")),
            (ev(ts="2000-01-01T00:30:00+01:00"), Bad("timestamp_out_of_range", "$.ts")),
            (ahead[0], None),
            (ahead[1], None),
            (ev(ts=rfc3339(now - timedelta(days=30))), None),
            (ev(ts=rfc3339(now - timedelta(days=32))), Bad("too_old", "$.ts")),
            (ev(ts="2000-01-02T00:00:00Z"), Bad("too_old", "$.ts")),
        ])
        rows = psql(self.db, "SELECT ts_adjusted, ts <= now() FROM events WHERE event_id = ANY (:'ids'::uuid[])",
                    ids=harness.pg_array(e["event_id"] for e in ahead))
        self.assertEqual([tuple(r) for r in rows], [("t", "t")] * 2, "clamped to the arrival and flagged")

    def test_too_long(self):
        self.check_batch([
            (ev(anonymous_id="a" * 257), Bad("too_long", "$.anonymous_id")),
            (ev(anonymous_id="a" * 256), None),
            (ev(user_id="u" * 257), Bad("too_long", "$.user_id")),
            (ev(session_id="\u00e9" * 129), Bad("too_long", "$.session_id")),  # 129 chars, 258 bytes
            (ev(session_id="\u00e9" * 128), None),
            (ev(url="https://shop.example/" + "a" * (4097 - 21)), Bad("too_long", "$.url")),
            (ev(url="https://shop.example/" + "a" * (4096 - 21)), None),
            (ev(referrer="r" * 4097), Bad("too_long", "$.referrer")),
            (ev(consent={"c" * 65: True}), Bad("too_long", Prefix("$.consent"))),
            (ev(consent={"c" * 64: True}), None),
        ])

    def test_too_deep(self):
        self.check_batch([
            (ev(props=nested(7)), None),
            (ev(props=nested(10)), Bad("too_deep", Prefix("$.props"))),
            (ev(props={"ok": 1, "list": [[[[[[[[[[1]]]]]]]]]]}), Bad("too_deep", Prefix("$.props"))),
        ])

    def test_unknown_field(self):
        self.check_batch([
            (ev(userId="u-1"), Bad("unknown_field", "$.userId")),
            (ev(timestamp=rfc3339(utcnow())), Bad("unknown_field", "$.timestamp")),
            (ev(properties={"a": 1}), Bad("unknown_field", "$.properties")),
            (ev(), None),
        ])

    def test_rejected_for_the_right_site(self):
        self.check_batch([(ev(), None), (ev(name="Bad"), Bad("name_format", "$.name"))],
                         key=BLOG_KEY, site_id="blog")

    def test_all_invalid_batch(self):
        resp = self.check_batch([(ev(name="Bad"), Bad("name_format", "$.name")),
                                 (7, Bad("not_an_object", "$")),
                                 (ev(ts="never"), Bad("invalid_timestamp", "$.ts"))])
        self.assertEqual(resp.body["accepted"], 0)

    def test_single_invalid_event(self):
        bad = ev(name="Not_Valid")
        resp = self.post(bad)
        rejected = self.assertAccepted(resp, 0, [0])
        self.assertEqual([(e["code"], e["path"]) for e in rejected[0]["errors"]], [("name_format", "$.name")])
        rows = psql(self.db, "SELECT event_index, payload::text FROM rejected_events WHERE request_id = :'r'",
                    r=resp.headers["x-request-id"])
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(int(rows[0][0]), 0)
        self.assertEqual(json.loads(rows[0][1]), bad)
        self.assertEqual(harness.event_id_counts(self.db, [bad["event_id"]]), {})

    def test_rejected_event_id_not_consumed(self):
        """A rejected event does not use up its id: the corrected event, sent
        again with the same id, is stored."""
        bad = ev(name="Purchase_Done")
        self.assertAccepted(self.post(bad), 0, [0])
        fixed = dict(bad, name="purchase_done")
        self.assertAccepted(self.post(fixed), 1)
        self.assertEqual(harness.event_id_counts(self.db, [bad["event_id"]]), {bad["event_id"]: 1})


if __name__ == "__main__":
    harness.main()
