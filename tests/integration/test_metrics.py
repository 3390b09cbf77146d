#!/usr/bin/env python3
"""GET /metrics: the Prometheus text exposition, checked line by line here
(HELP and TYPE before a family's samples, metric and label names, quoted
label values, numbers, no series twice), and counters that move with
traffic: events by outcome, the problems of refused events by code, and
the alert evaluator's and webhooks' counters (test_alert_webhooks)."""

import re

import harness

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE = re.compile(r"^(?P<name>%s)(?:\{(?P<labels>%s(?:,%s)*)\})? (?P<value>\S+)$" % (NAME, LABEL, LABEL))


def parse(text):
    """{(name, labels): value}, failing on anything out of the format."""
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
            assert name == current and families[name] is not None, "sample outside its family: %r" % line
            assert (name, labels) not in series, "series twice: %r" % line
            series[(name, labels)] = float(value)
            if families[name] == "counter":
                assert name.endswith("_total") and float(value) >= 0, line
    return series


class MetricsCase(harness.DaemonTestCase):
    def metrics(self):
        resp = harness.http_request("GET", self.daemon.url("/metrics"))
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.headers["content-type"].startswith("text/plain; version=0.0.4"))
        return parse(resp.raw.decode())

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


if __name__ == "__main__":
    harness.main()
