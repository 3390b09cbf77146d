#!/usr/bin/env python3
"""GET /metrics: the Prometheus text exposition, checked line by line here
(HELP and TYPE before a family's samples, metric and label names, quoted
label values, numbers, no series twice; histograms with cumulative
buckets in ascending le, +Inf equal to _count) and by promtool's own
linter, and metrics that move with traffic: events by outcome, the
problems of refused events by code, requests by route and status and
their durations, the writer's batches, commits and deduplicated events,
its queue and the database's state, and the alert evaluator's and
webhooks' counters (test_alert_webhooks)."""

import math
import re
import time
import urllib.parse

import harness

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(r"^(?P<name>%s)(?:\{(?P<labels>%s(?:,%s)*)\})? (?P<value>\S+)$" % (NAME, LABEL, LABEL))
LE = re.compile(r'(?:^|,)le="([^"]*)"$')
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")



def family_of(name, families, current):
    """The family a sample of name belongs to: itself, or for a histogram's
    _bucket, _sum and _count the histogram being read."""
    if current is not None and families.get(current) == "histogram":
        for suffix in HISTOGRAM_SUFFIXES:
            if name == current + suffix:
                return current
    return name


def parse(text):
    """{(name, labels): value}, failing on anything out of the format;
    histograms are checked by check_histograms."""
    assert text.endswith("\n"), "ends with a newline"
    families, series, current = {}, {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert re.fullmatch(NAME, name), line
            assert name not in families, "family %s twice" % name
            families[name] = None
            current = name
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current and kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            families[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, "not a sample: %r" % line
            name, labels, value = m.group("name"), m.group("labels") or "", m.group("value")
            family = family_of(name, families, current)
            assert family == current and families[family] is not None, "sample outside its family: %r" % line
            assert (name, labels) not in series, "series twice: %r" % line
            series[(name, labels)] = float(value)
            if families[family] == "counter":
                assert name.endswith("_total") and float(value) >= 0, line
            if families[family] == "histogram" and name.endswith("_bucket"):
                assert LE.search(labels), "a bucket without le: %r" % line
    check_histograms(series, {n for n, k in families.items() if k == "histogram"})
    return series


def check_histograms(series, names):
    """Each label set of each histogram: buckets cumulative (never fewer
    with a larger le), ending at +Inf, which equals _count; a _sum."""
    buckets = {}
    for (name, labels), value in series.items():
        family = name[:-len("_bucket")]
        if not name.endswith("_bucket") or family not in names:
            continue
        m = LE.search(labels)
        rest = labels[:m.start()]
        le = float(m.group(1))
        buckets.setdefault((family, rest), []).append((le, value))
    for (family, labels), rows in buckets.items():
        rows.sort()
        les = [le for le, _ in rows]
        counts = [n for _, n in rows]
        assert les[-1] == math.inf, "%s{%s}: no +Inf bucket" % (family, labels)
        assert counts == sorted(counts), "%s{%s}: buckets not cumulative: %r" % (family, labels, rows)
        assert series[(family + "_count", labels)] == counts[-1], "%s{%s}: +Inf != _count" % (family, labels)
        assert series[(family + "_sum", labels)] >= 0, "%s{%s}: sum" % (family, labels)
    for name in names:
        counts = [labels for (n, labels) in series if n == name + "_count"]
        for labels in counts:
            assert (name, labels) in buckets, "%s{%s}: _count without buckets" % (name, labels)


def route(path, status):
    return ("milepost_http_requests_total", 'route="%s",status="%d"' % (path, status))


def delta(after, before, key):
    return after.get(key, 0) - before.get(key, 0)


class MetricsCase(harness.DaemonTestCase):
    def scrape(self):
        resp = harness.http_request("GET", self.daemon.url("/metrics"))
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.headers["content-type"].startswith("text/plain; version=0.0.4"))
        return resp.raw.decode()

    def metrics(self):
        return parse(self.scrape())

    def test_exposition_and_counters(self):
        before = self.metrics()
        stored = before[("milepost_events_total", 'result="stored"')]
        rejected = before[("milepost_events_total", 'result="rejected"')]
        self.assertEqual(before.get(("milepost_event_problems_total", 'code="wrong_type"'), 0), 0)
        good = harness.make_event(name="page_view")
        bad = harness.make_event(name="page_view", ts=12)
        resp = self.daemon.post_events({"batch": [good, bad]})
        self.assertEqual((resp.status, resp.body["accepted"]), (202, 1), resp)
        after = self.metrics()
        self.assertEqual(after[("milepost_events_total", 'result="stored"')], stored + 1)
        self.assertEqual(after[("milepost_events_total", 'result="rejected"')], rejected + 1)
        code = resp.body["rejected"][0]["errors"][0]["code"]
        self.assertEqual(after[("milepost_event_problems_total", 'code="%s"' % code)], 1)
        for name in ("milepost_alert_sweeps_total", "milepost_webhook_deliveries_total",
                     "milepost_reloads_total"):
            self.assertIn((name, ""), after)

    def test_promtool_finds_nothing(self):
        """promtool check metrics prints each lint problem (a name, a type,
        a missing HELP) on its output and exits non-zero; clean, it prints
        nothing. Traffic first, so that every family has series."""
        self.assertEqual(self.post({"batch": [harness.make_event()]}).status, 202)
        self.assertEqual(harness.http_request("GET", self.daemon.url("/no/such/path")).status, 404)
        self.scrape()
        text = self.scrape()
        self.assertIn("milepost_http_request_duration_seconds_bucket", text)
        self.assertIn("milepost_writer_batch_events_bucket", text)
        self.assertPromtoolClean(text)

    def test_requests_and_batches_move(self):
        before = self.metrics()
        posts, events = 3, 0
        for i in range(posts):
            batch = [harness.make_event() for _ in range(i + 1)]
            events += len(batch)
            resp = self.post({"batch": batch})
            self.assertEqual((resp.status, resp.body["accepted"]), (202, len(batch)), resp)
        self.assertEqual(harness.http_request("GET", self.daemon.url("/no/such/path")).status, 404)
        after = self.metrics()
        # Counted when the answer is sent: the scrape before this one.
        self.assertEqual(delta(after, before, route("/v1/events", 202)), posts)
        self.assertEqual(delta(after, before, route("/metrics", 200)), 1)
        self.assertEqual(delta(after, before, route("other", 404)), 1)
        self.assertFalse([k for k in after if k[0] == "milepost_http_requests_total" and "no/such" in k[1]],
                         "raw paths are not labels")
        duration = ("milepost_http_request_duration_seconds_count", 'route="/v1/events"')
        self.assertEqual(delta(after, before, duration), posts)
        self.assertGreater(delta(after, before, ("milepost_http_request_duration_seconds_sum",
                                                 'route="/v1/events"')), 0)
        # Each post's events commit in a batch before its answer; batches
        # may carry several posts' events (group commit), at least one.
        batches = delta(after, before, ("milepost_writer_batch_events_count", ""))
        self.assertGreaterEqual(batches, 1)
        self.assertLessEqual(batches, posts)
        self.assertEqual(delta(after, before, ("milepost_writer_batch_events_sum", "")), events)
        self.assertEqual(delta(after, before, ("milepost_writer_commit_duration_seconds_count", "")), batches)
        self.assertGreater(delta(after, before, ("milepost_writer_commit_duration_seconds_sum", "")), 0)
        self.assertEqual(after[("milepost_database_up", "")], 1)
        self.assertEqual(after[("milepost_writer_queue_depth", "")], 0)
        self.assertEqual(delta(after, before, ("milepost_events_deduplicated_total", "")), 0)

    def test_retried_event_counts_as_deduplicated(self):
        first = harness.make_event()
        self.assertEqual(self.post({"batch": [first]}).status, 202)
        before = self.metrics()
        resp = self.post({"batch": [first, harness.make_event()]})
        self.assertEqual((resp.status, resp.body["accepted"]), (202, 2), resp)
        after = self.metrics()
        self.assertEqual(delta(after, before, ("milepost_events_deduplicated_total", "")), 1)
        self.assertEqual(harness.event_id_counts(self.db, [first["event_id"]]), {first["event_id"]: 1})
        # Twice in one request: the second is the one skipped.
        twice = harness.make_event()
        resp = self.post({"batch": [twice, dict(twice)]})
        self.assertEqual((resp.status, resp.body["accepted"]), (202, 2), resp)
        again = self.metrics()
        self.assertEqual(delta(again, after, ("milepost_events_deduplicated_total", "")), 1)
        self.assertEqual(delta(again, after, ("milepost_writer_batch_events_sum", "")), 2)
        self.assertEqual(delta(again, before, ("milepost_events_duplicate_conflicts_total", "")), 0)

    def test_claimed_id_counts_as_conflict(self):
        first = harness.make_event()
        self.assertEqual(self.post(first).status, 202)
        before = self.metrics()
        resp = self.post({"batch": [dict(first, name="cart_added"), first]})
        self.assertEqual((resp.status, resp.body["accepted"]), (202, 1), resp)
        after = self.metrics()
        self.assertEqual(delta(after, before, ("milepost_events_duplicate_conflicts_total", "")), 1)
        self.assertEqual(delta(after, before, ("milepost_events_deduplicated_total", "")), 1)


class DatabaseDownCase(harness.DaemonTestCase):
    def database_up(self):
        resp = harness.http_request("GET", self.daemon.url("/metrics"))
        return parse(resp.raw.decode())[("milepost_database_up", "")]

    def poll_up(self, want, timeout=15):
        deadline = time.monotonic() + timeout
        while self.database_up() != want:
            self.assertLess(time.monotonic(), deadline, "database_up never became %d" % want)
            time.sleep(0.1)

    def test_database_up_follows_the_database(self):
        """database_up is 1, 0 once the database refuses the writers (as
        /readyz is 503), and 1 again when it takes them back."""
        self.assertEqual(self.database_up(), 1)
        name = urllib.parse.urlparse(self.db).path.lstrip("/")
        admin = harness.db_url("postgres")
        harness.psql(admin, 'ALTER DATABASE "%s" ALLOW_CONNECTIONS false' % name)
        try:
            harness.psql(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                " WHERE datname = :'d'", d=name)
            self.poll_up(0)
            self.assertEqual(harness.http_request("GET", self.daemon.url("/readyz")).status, 503)
        finally:
            harness.psql(admin, 'ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % name)
        self.poll_up(1)


if __name__ == "__main__":
    harness.main()
