#!/usr/bin/env python3
"""GET /api/v1/rejected: the rejected and quarantined events of a site,
newest first, with the filters code, event, since, until and replayed, the
limit and cursor of pagination, and a summary of everything the filters
match. Expectations come from the rows the seeded events left in
rejected_events (checked against what was sent)."""

import json
from datetime import datetime, timedelta, timezone

import harness
from harness import BLOG_KEY, SHOP_KEY, make_event, psql, rfc3339, ts_utc_sql, utc_text, utcnow
from admin_api import key_entry, list_rejected, new_api_key, parse_time, plan_doc

READ = new_api_key("ak_read")

PLAN = plan_doc(1, {
    "page_viewed": {"kind": "page"},
    "checkout_started": {"kind": "milestone"},
    "purchase_completed": {"kind": "macro", "properties": {
        "order_id": {"type": "string", "required": True},
        "revenue": {"type": "number", "required": True, "min": 0}}},
})

ITEM_KEYS = {"id", "received_at", "request_id", "event_index", "event_name", "quarantined", "errors",
             "payload", "replayed_at", "replayed_event_id"}


def ev(name, props=None, **fields):
    return make_event(name=name, props=props, **fields)


# (event, expected distinct error codes, quarantined); None events are valid.
def shop_seed():
    return [
        [(ev("promo_clicked"), ["unknown_event"], True),
         (ev("page_viewed"), None, False),
         (ev("promo_clicked", {"slot": 2}), ["unknown_event"], True),
         (ev("purchase_completed", {"order_id": "O-1"}), ["missing_property"], False),
         (ev("purchase_completed", {}), ["missing_property"], False),   # two errors, one code
         (ev("purchase_completed", {"order_id": 5, "revenue": -1}), ["out_of_range", "wrong_type"], False)],
        [(ev("BadName"), ["name_format"], False),
         (ev("checkout_started", ts="never"), ["invalid_timestamp"], False),
         (42, ["not_an_object"], False),
         (ev("checkout_started"), None, False),
         (ev("promo_clicked"), ["unknown_event"], True),
         (ev("purchase_completed", {"order_id": "O-2"}), ["missing_property"], False),
         (ev("Other_Bad"), ["name_format"], False)],
        # More than the default page of 100.
        [(ev("wishlist_added", {"n": i}), ["unknown_event"], True) for i in range(104)],
    ]


def blog_seed():
    return [[(ev("promo_clicked"), ["unknown_event"], True), (ev("page_viewed"), None, False),
             (ev("BadName"), ["name_format"], False),
             (ev("purchase_completed", {"order_id": "B-1"}), ["missing_property"], False)]]


ROW_SQL = ("SELECT id, site_id, %s, request_id, event_index, event_name, quarantined, error_codes::text,"
           " errors::text, payload::text, %s, replayed_event_id FROM rejected_events"
           % (ts_utc_sql("received_at"), ts_utc_sql("replayed_at")))


def load_rows(db):
    """Every rejected_events row as a dict, by id."""
    rows = {}
    for r in psql(db, ROW_SQL):
        rows[int(r[0])] = {
            "id": int(r[0]), "site_id": r[1], "received_at": r[2], "request_id": r[3],
            "event_index": int(r[4]), "event_name": r[5], "quarantined": r[6] == "t",
            "error_codes": harness._pg_text_array(r[7]), "errors": json.loads(r[8]),
            "payload": json.loads(r[9]), "replayed_at": r[10], "replayed_event_id": r[11]}
    return rows


class RejectedListTest(harness.DaemonTestCase):

    @classmethod
    def setUpClass(cls):
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "api_keys": [key_entry("dash", "read", READ)]}
        super().setUpClass()
        cls.sent = {}   # (request_id, index) -> (event, codes, quarantined)
        for key, seed in ((SHOP_KEY, shop_seed()), (BLOG_KEY, blog_seed())):
            for batch in seed:
                resp = cls.daemon.post_events({"batch": [e for e, _, _ in batch]}, key=key)
                if resp.status != 202:
                    raise AssertionError("seeding failed: %r" % (resp,))
                for i, (e, codes, quarantined) in enumerate(batch):
                    if codes is not None:
                        cls.sent[(resp.headers["x-request-id"], i)] = (e, codes, quarantined)
        # Distinct whole-second times, increasing with the id, days ago.
        cls.base = (utcnow() - timedelta(days=3)).replace(microsecond=0)
        psql(cls.db, "UPDATE rejected_events SET received_at = :'b'::timestamptz + id * interval '1 minute'",
             b=rfc3339(cls.base, "seconds"))
        # Some rows replayed (as a replay would mark them).
        psql(cls.db, "UPDATE rejected_events SET replayed_at = received_at + interval '1 hour',"
                     " replayed_event_id = gen_random_uuid() WHERE id IN (SELECT id FROM rejected_events"
                     " WHERE site_id = 'shop' AND event_name IN ('promo_clicked', 'wishlist_added')"
                     " ORDER BY id LIMIT 5)")
        psql(cls.db, "UPDATE rejected_events SET replayed_at = received_at + interval '2 hours',"
                     " replayed_event_id = NULL WHERE id = (SELECT min(id) FROM rejected_events"
                     " WHERE site_id = 'shop' AND 'missing_property' = ANY (error_codes))")
        cls.rows = load_rows(cls.db)

    # -- the model

    def model(self, site="shop", code=None, event=None, since=None, until=None, replayed=None):
        """The rows the filters match, newest (highest id) first."""
        out = []
        for r in self.rows.values():
            at = datetime.strptime(r["received_at"], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
            if (r["site_id"] == site and (code is None or code in r["error_codes"])
                    and (event is None or r["event_name"] == event)
                    and (since is None or at >= since) and (until is None or at < until)
                    and (replayed is None or (r["replayed_at"] is not None) == replayed)):
                out.append(r)
        return sorted(out, key=lambda r: -r["id"])

    def summary_of(self, rows):
        by_code, by_event = {}, {}
        for r in rows:
            for c in set(r["error_codes"]):
                by_code[c] = by_code.get(c, 0) + 1
            by_event[r["event_name"]] = by_event.get(r["event_name"], 0) + 1
        return len(rows), by_code, by_event

    def get(self, **params):
        resp = list_rejected(self.daemon, READ, **params)
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertJsonType(resp)
        self.assertRequestId(resp)
        self.assertEqual(set(resp.body), {"site", "items", "next_cursor", "summary"}, "answer keys")
        self.assertEqual(set(resp.body["summary"]), {"total", "by_code", "by_event"}, "summary keys")
        return resp.body

    def assertSummary(self, body, rows):
        total, by_code, by_event = self.summary_of(rows)
        s = body["summary"]
        self.assertEqual(s["total"], total, "summary total")
        self.assertEqual(s["by_code"], by_code, "summary by_code (events per code)")
        # docs/api.md: events without a name count under "".
        by_event = {("" if k is None else k): v for k, v in by_event.items()}
        self.assertEqual(s["by_event"], by_event, "summary by_event")

    def assertItemsAre(self, items, rows):
        self.assertEqual([i["id"] for i in items], [r["id"] for r in rows], "item ids, newest first")
        for item, row in zip(items, rows):
            self.assertEqual(set(item), ITEM_KEYS, "item keys")
            self.assertEqual(utc_text(parse_time(item["received_at"])), row["received_at"])
            for k in ("request_id", "event_index", "event_name", "quarantined", "errors", "payload",
                      "replayed_event_id"):
                self.assertEqual(item[k], row[k], "%s of item %d" % (k, row["id"]))
            if row["replayed_at"] is None:
                self.assertIsNone(item["replayed_at"])
            else:
                self.assertEqual(utc_text(parse_time(item["replayed_at"])), row["replayed_at"])

    def walk(self, page_limit, **params):
        """Every page with limit=page_limit; returns (items, pages)."""
        items, pages, cursor = [], 0, None
        while True:
            extra = {"cursor": cursor} if cursor is not None else {}
            body = self.get(limit=page_limit, **params, **extra)
            pages += 1
            self.assertLessEqual(len(body["items"]), page_limit)
            items += body["items"]
            if body["next_cursor"] is None:
                return items, pages
            self.assertIsInstance(body["next_cursor"], str)
            self.assertEqual(body["next_cursor"], str(body["items"][-1]["id"]),
                             "next_cursor is the last item's id")
            cursor = body["next_cursor"]
            self.assertLess(pages, 1000, "pagination does not end")

    # -- the seed itself

    def test_seed_is_in_rejected_events(self):
        """The model rests on rejected_events: one row per rejected event sent,
        with its payload, codes and quarantine flag."""
        got = {(r["request_id"], r["event_index"]): r for r in self.rows.values()}
        self.assertEqual(set(got), set(self.sent))
        for k, (e, codes, quarantined) in self.sent.items():
            r = got[k]
            self.assertEqual(r["payload"], e)
            self.assertEqual(sorted(r["error_codes"]), sorted(codes))
            self.assertEqual(r["quarantined"], quarantined)
            self.assertEqual(r["event_name"], e.get("name") if isinstance(e, dict) else None)

    # -- items

    def test_items_are_the_rows_newest_first(self):
        for site in ("shop", "blog"):
            with self.subTest(site=site):
                body = self.get(site=site, limit=1000)
                self.assertEqual(body["site"], site)
                rows = self.model(site)
                self.assertItemsAre(body["items"], rows)
                self.assertIsNone(body["next_cursor"])
                self.assertSummary(body, rows)

    def test_item_errors_have_code_path_message(self):
        for item in self.get(site="shop", limit=1000)["items"]:
            self.assertIsInstance(item["errors"], list)
            self.assertTrue(item["errors"])
            for e in item["errors"]:
                self.assertTrue({"code", "path", "message"} <= set(e), "error %r" % (e,))

    def test_sites_are_separated(self):
        shop = {i["id"] for i in self.get(site="shop", limit=1000)["items"]}
        blog = {i["id"] for i in self.get(site="blog", limit=1000)["items"]}
        self.assertEqual(blog, {r["id"] for r in self.rows.values() if r["site_id"] == "blog"})
        self.assertEqual(shop, {r["id"] for r in self.rows.values() if r["site_id"] == "shop"})
        self.assertFalse(shop & blog)
        self.assertEqual(self.get(site="blog", event="wishlist_added")["summary"]["total"], 0)

    # -- limit and pagination

    def test_default_limit(self):
        rows = self.model()
        self.assertGreater(len(rows), 100, "the seed must exceed a default page")
        body = self.get(site="shop")
        self.assertItemsAre(body["items"], rows[:100])
        self.assertEqual(body["next_cursor"], str(rows[99]["id"]))
        self.assertSummary(body, rows)

    def test_limit(self):
        rows = self.model()
        for limit in (1, 7, 1000):
            with self.subTest(limit=limit):
                body = self.get(site="shop", limit=limit)
                self.assertItemsAre(body["items"], rows[:limit])
                if limit < len(rows):
                    self.assertEqual(body["next_cursor"], str(rows[limit - 1]["id"]))
                else:
                    self.assertIsNone(body["next_cursor"])
                self.assertSummary(body, rows)

    def test_walk_every_page(self):
        rows = self.model()
        items, pages = self.walk(2, site="shop")
        ids = [i["id"] for i in items]
        self.assertEqual(len(ids), len(set(ids)), "an item came twice")
        self.assertEqual(ids, [r["id"] for r in rows], "every row once, in descending id order")
        self.assertIn(pages, ((len(rows) + 1) // 2, (len(rows) + 1) // 2 + 1), "number of pages")

    def test_walk_filtered_pages(self):
        for params, limit in (({"code": "missing_property"}, 1), ({"event": "wishlist_added"}, 7),
                              ({"replayed": "false"}, 3), ({"code": "unknown_event", "replayed": "true"}, 2)):
            with self.subTest(params=params):
                model_params = dict(params)
                if "replayed" in model_params:
                    model_params["replayed"] = model_params["replayed"] == "true"
                rows = self.model(**model_params)
                items, _ = self.walk(limit, site="shop", **params)
                self.assertEqual([i["id"] for i in items], [r["id"] for r in rows])

    def test_cursor_past_the_end(self):
        lowest = min(r["id"] for r in self.rows.values())
        body = self.get(site="shop", cursor=lowest)
        self.assertEqual(body["items"], [])
        self.assertIsNone(body["next_cursor"])
        self.assertSummary(body, self.model())  # the summary ignores the cursor

    def test_cursor_in_the_middle(self):
        rows = self.model()
        cut = rows[10]["id"]
        body = self.get(site="shop", cursor=cut, limit=5)
        self.assertItemsAre(body["items"], [r for r in rows if r["id"] < cut][:5])

    # -- filters

    def test_filter_code(self):
        codes = {c for r in self.rows.values() for c in r["error_codes"]}
        for code in sorted(codes) + ["event_sunset"]:
            with self.subTest(code=code):
                body = self.get(site="shop", code=code, limit=1000)
                rows = self.model(code=code)
                self.assertItemsAre(body["items"], rows)
                self.assertSummary(body, rows)
                for item in body["items"]:
                    self.assertIn(code, [e["code"] for e in item["errors"]])

    def test_filter_event(self):
        for event in ("promo_clicked", "purchase_completed", "wishlist_added", "checkout_started",
                      "BadName", "page_viewed", "no_such_event"):
            with self.subTest(event=event):
                body = self.get(site="shop", event=event, limit=1000)
                rows = self.model(event=event)
                self.assertItemsAre(body["items"], rows)
                self.assertSummary(body, rows)
        body = self.get(site="shop", event="no_such_event")
        self.assertEqual(body["items"], [])
        self.assertIsNone(body["next_cursor"])
        self.assertEqual(body["summary"], {"total": 0, "by_code": {}, "by_event": {}})

    def test_filter_time(self):
        rows = self.model()
        pivot = parse_time(rows[len(rows) // 2]["received_at"] + "+00:00")
        later = parse_time(rows[5]["received_at"] + "+00:00")
        plus2 = timezone(timedelta(hours=2))
        cases = [
            ({"since": rfc3339(pivot, "seconds")}, {"since": pivot}),  # inclusive
            ({"until": rfc3339(pivot, "seconds")}, {"until": pivot}),  # exclusive
            ({"since": pivot.astimezone(plus2).isoformat()}, {"since": pivot}),
            ({"since": rfc3339(pivot + timedelta(seconds=1), "milliseconds")},
             {"since": pivot + timedelta(seconds=1)}),
            ({"since": rfc3339(pivot, "seconds"), "until": rfc3339(later, "seconds")},
             {"since": pivot, "until": later}),
            ({"since": rfc3339(utcnow() + timedelta(days=1))}, {"since": utcnow() + timedelta(days=1)}),
            ({"until": "2001-01-01T00:00:00Z"}, {"until": datetime(2001, 1, 1, tzinfo=timezone.utc)}),
        ]
        for params, model_params in cases:
            with self.subTest(params=params):
                body = self.get(site="shop", limit=1000, **params)
                rows_ = self.model(**model_params)
                self.assertItemsAre(body["items"], rows_)
                self.assertSummary(body, rows_)
        self.assertIn(rows[len(rows) // 2]["id"], [i["id"] for i in self.get(
            site="shop", limit=1000, since=rfc3339(pivot, "seconds"))["items"]])

    def test_filter_replayed(self):
        for value in (True, False):
            with self.subTest(replayed=value):
                body = self.get(site="shop", replayed=str(value).lower(), limit=1000)
                rows = self.model(replayed=value)
                self.assertTrue(rows, "the seed has rows of both kinds")
                self.assertItemsAre(body["items"], rows)
                self.assertSummary(body, rows)

    def test_filters_combined(self):
        rows = self.model()
        since = parse_time(rows[-3]["received_at"] + "+00:00")
        until = parse_time(rows[2]["received_at"] + "+00:00")
        for params in ({"code": "unknown_event", "replayed": "false"},
                       {"code": "missing_property", "event": "purchase_completed"},
                       {"code": "unknown_event", "event": "promo_clicked", "since": rfc3339(since, "seconds"),
                        "until": rfc3339(until, "seconds"), "replayed": "true"},
                       {"code": "name_format", "event": "promo_clicked"}):
            with self.subTest(params=params):
                model_params = dict(params)
                if "replayed" in model_params:
                    model_params["replayed"] = model_params["replayed"] == "true"
                for k in ("since", "until"):
                    if k in model_params:
                        model_params[k] = parse_time(model_params[k])
                body = self.get(site="shop", limit=1000, **params)
                expected = self.model(**model_params)
                self.assertItemsAre(body["items"], expected)
                self.assertSummary(body, expected)

    # -- bad parameters

    def test_invalid_parameters(self):
        for params in ({"since": "yesterday"}, {"since": "2026-01-01"}, {"since": "2026-01-01T00:00:00"},
                       {"until": "2026-13-01T00:00:00Z"}, {"until": "2026-02-30T00:00:00Z"},
                       {"until": "2026-01-01 00:00:00Z x"},
                       {"limit": "0"}, {"limit": "1001"}, {"limit": "-1"}, {"limit": "abc"}, {"limit": "1.5"},
                       {"limit": "10x"}, {"limit": "99999999999999999999"},
                       {"replayed": "yes"}, {"replayed": "1"}, {"replayed": "TRUE"},
                       {"cursor": "abc"}, {"cursor": "0"}, {"cursor": "-5"},
                       {"limit": " 5"}, {"limit": "+5"},
                       {"code": "c" * 65}, {"event": "e" * 65}, {"code": b"\xff\xfe"}, {"event": b"caf\xe9"}):
            with self.subTest(params=params):
                self.assertError(list_rejected(self.daemon, READ, site="shop", **params), 400, "invalid_parameter")


if __name__ == "__main__":
    harness.main()
