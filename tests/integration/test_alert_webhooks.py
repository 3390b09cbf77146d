#!/usr/bin/env python3
"""Alert webhooks: one POST per transition and URL, with the documented
payload, a Slack-compatible text and an HMAC-SHA256 signature; retried with
backoff against a local receiver that fails twice and then succeeds, every
attempt visible in the history; given up after alert_webhook_max_attempts;
no second notification while the state stays; addresses that are not
public refused unless alert_webhook_allow_private (the receivers here are
local, so the class allows them and one test takes it back).

Fixture: cart_viewed by 2 people yesterday (UTC); rules "people below 5"
fire on it when evaluated with notify=true."""

import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import harness
from admin_api import api_call, key_entry, new_api_key
from harness import utcnow
from test_metrics import parse as parse_metrics

PLAN = harness.read_example_plan()
ADMIN = new_api_key("ak_hooks")
READ = new_api_key("rk_hooks")
SECRET = "hook-secret-0123456789"
RULES = "/api/v1/alerts/rules"


class Receiver:
    """A local webhook: answers the statuses of script in turn (then the
    last one), and keeps every request."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.script.pop(0) if len(receiver.script) > 1 else receiver.script[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class WebhookCase(harness.DaemonTestCase):
    @classmethod
    def setUpClass(cls):
        # A proxy nobody configured in milepost.json: every call that went
        # through it would land here instead of at its receiver.
        cls.trap = Receiver([200])
        proxy_env = {name: cls.trap.url.rsplit("/", 1)[0]
                     for name in ("http_proxy", "HTTPS_PROXY", "ALL_PROXY")}
        cls.daemon_config = {"plan": harness.write_plan(PLAN), "pii_hash_key": "hooks-test-pii-key-0123456789abc",
                             "alert_evaluation_interval_s": 3600, "alert_webhook_backoff_s": 1,
                             "alert_webhook_max_attempts": 4, "alert_webhook_secret": SECRET,
                             "alert_webhook_allow_private": True,
                             "api_keys": [key_entry("admin", "admin", ADMIN), key_entry("read", "read", READ)],
                             "env": proxy_env}
        super().setUpClass()
        noon = utcnow().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=1)
        run = harness.new_id()[:8]
        events = [harness.person_event(run, "cart_viewed", "p%d" % i, noon, props={}) for i in range(2)]
        assert cls.daemon.post_events({"batch": events}).status == 202

    @classmethod
    def tearDownClass(cls):
        cls.trap.close()
        super().tearDownClass()

    def fire(self, name, urls):
        rule = {"name": name, "owner": "shop-team@example.com", "severity": "critical", "min_volume": 1,
                "metric": {"type": "count", "event": "cart_viewed", "unit": "people"},
                "notify": urls, "condition": {"kind": "threshold", "below": 5}}
        resp = api_call(self.daemon, "POST", RULES, key=ADMIN, params={"site": "shop"}, body=rule)
        self.assertEqual(resp.status, 201, "%r" % (resp,))
        rid = resp.body["id"]
        resp = api_call(self.daemon, "POST", "%s/%d/evaluate" % (RULES, rid), key=ADMIN,
                        params={"site": "shop", "notify": "true"})
        self.assertEqual(resp.status, 200, "%r" % (resp,))
        self.assertEqual((resp.body["state"]["to"], resp.body["notified"]), ("firing", True))
        return rid, resp.body["event_id"]

    def deliveries(self, rid):
        events = api_call(self.daemon, "GET", "/api/v1/alerts/events", key=ADMIN,
                          params={"site": "shop", "rule": rid}).body["events"]
        return events[0]["deliveries"]

    def wait(self, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        self.fail("not after %ds" % timeout)

    def test_retried_until_delivered(self):
        receiver = Receiver([500, 500, 200])
        try:
            rid, event_id = self.fire("retried", [receiver.url])
            self.wait(lambda: self.deliveries(rid)[0]["status"] == "delivered")
            d = self.deliveries(rid)[0]
            self.assertEqual((d["attempts"], d["last_status"], d["last_error"], d["url"]),
                             (3, 200, None, receiver.url))
            self.assertEqual(len(receiver.requests), 3)
            seen = api_call(self.daemon, "GET", "/api/v1/alerts/events", key=READ,
                            params={"site": "shop", "rule": rid}).body["events"][0]["deliveries"]
            self.assertEqual(seen[0]["url"], receiver.url.rsplit("/", 1)[0] + "/...", "a read key sees no path")
            metrics = parse_metrics(harness.http_request("GET", self.daemon.url("/metrics")).raw.decode())
            self.assertGreaterEqual(metrics[("milepost_webhook_deliveries_total", "")], 1)
            self.assertGreaterEqual(metrics[("milepost_webhook_attempts_failed_total", "")], 2)
            headers, body = receiver.requests[-1]
            self.assertEqual(receiver.requests[0][1], body, "the same payload every attempt")
            want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            self.assertEqual(headers.get("X-Milepost-Signature"), want)
            self.assertEqual(headers.get("Content-Type"), "application/json")
            p = json.loads(body)
            self.assertEqual((p["state"], p["previous_state"], p["value"], p["bound"], p["event_id"], p["site"]),
                             ("firing", "ok", 2, 5, event_id, "shop"))
            self.assertEqual((p["rule"]["id"], p["rule"]["name"], p["rule"]["severity"]), (rid, "retried", "critical"))
            self.assertNotIn("notify", p["rule"], "no receiver learns the webhook URLs")
            self.assertEqual(p["why"], "2 is below 5")
            self.assertTrue(p["text"].startswith("[firing] retried (shop): 2 is below 5, period "), p["text"])
            self.assertIn("shop-team@example.com", p["text"])
            self.assertTrue(p["query"].startswith("/api/v1/milestones?site=shop&names=cart_viewed&from="), p["query"])
            self.assertEqual(p["evaluate"], "/api/v1/alerts/rules/%d/evaluate?site=shop" % rid)
            # The period the query names is the one judged.
            self.assertEqual(p["period"]["start"][:10], (utcnow() - timedelta(days=1)).date().isoformat())
            # Still firing: no second notification.
            resp = api_call(self.daemon, "POST", "%s/%d/evaluate" % (RULES, rid), key=ADMIN,
                            params={"site": "shop", "notify": "true"})
            self.assertEqual((resp.body["state"], resp.body["notified"]), ({"from": "firing", "to": "firing"}, False))
            time.sleep(2)
            self.assertEqual(len(receiver.requests), 3)
        finally:
            receiver.close()

    def test_given_up_after_the_last_attempt(self):
        receiver = Receiver([503])
        try:
            rid, _ = self.fire("refused", [receiver.url, "http://127.0.0.1:9/closed"])
            self.wait(lambda: all(d["status"] == "failed" for d in self.deliveries(rid)))
            by_url = {d["url"]: d for d in self.deliveries(rid)}
            self.assertEqual((by_url[receiver.url]["attempts"], by_url[receiver.url]["last_status"]), (4, 503))
            closed = by_url["http://127.0.0.1:9/closed"]
            self.assertEqual((closed["attempts"], closed["last_status"]), (4, None))
            self.assertTrue(closed["last_error"])
            self.assertEqual(len(receiver.requests), 4)
        finally:
            receiver.close()

    def test_proxy_variables_ignored_and_user_info_hidden(self):
        receiver = Receiver([200])
        port = receiver.server.server_address[1]
        url = "http://bot:s3cr%40t@127.0.0.1:" + str(port) + "/hook"
        try:
            rid, _ = self.fire("direct", [url])
            self.wait(lambda: self.deliveries(rid)[0]["status"] == "delivered")
            self.assertEqual(len(receiver.requests), 1)
            self.assertEqual(self.trap.requests, [], "no call went through the environment's proxy")
            rules = api_call(self.daemon, "GET", RULES, key=READ, params={"site": "shop"}).body
            seen = [r["rule"]["notify"] for r in rules["rules"] if r["id"] == rid][0]
            self.assertEqual(seen, ["http://127.0.0.1:%d/..." % port])
            events = api_call(self.daemon, "GET", "/api/v1/alerts/events", key=READ,
                              params={"site": "shop", "rule": rid}).body
            self.assertEqual(events["events"][0]["deliveries"][0]["url"], "http://127.0.0.1:%d/..." % port)
            for body in (rules, events):
                self.assertNotIn("s3cr", json.dumps(body))
                self.assertNotIn("bot", json.dumps(body))
        finally:
            receiver.close()

    def test_private_addresses_refused_unless_allowed(self):
        receiver = Receiver([200])
        port = receiver.server.server_address[1]
        # By address, and by a name that resolves to one (checked after DNS).
        urls = [receiver.url, "http://localhost:%d/hook" % port]
        try:
            self.daemon.rewrite_config(alert_webhook_allow_private=None)
            self.daemon.reload()
            rid, _ = self.fire("private", urls)
            self.wait(lambda: all(d["status"] == "failed" for d in self.deliveries(rid)))
            for d in self.deliveries(rid):
                self.assertEqual((d["attempts"], d["last_status"]), (4, None), d)
                self.assertIn("no public address", d["last_error"])
            self.assertEqual(receiver.requests, [], "nothing reached the internal receiver")
        finally:
            self.daemon.rewrite_config(alert_webhook_allow_private=True)
            self.daemon.reload()
            receiver.close()
        allowed = Receiver([200])
        try:
            rid, _ = self.fire("private allowed", [allowed.url])
            self.wait(lambda: self.deliveries(rid)[0]["status"] == "delivered")
            self.assertEqual(len(allowed.requests), 1)
        finally:
            allowed.close()


if __name__ == "__main__":
    harness.main(day_bound=True)
