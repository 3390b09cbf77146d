#!/usr/bin/env python3
"""SIGHUP: the configuration and the plan are read again, all or nothing. A
good plan takes effect for the events received afterwards; a plan (or a
configuration) with problems is refused, logged, and the rules in force
stay; open connections are not dropped."""

import copy
import http.client
import threading

import harness
from harness import make_event, psql

PLAN_V1 = {
    "version": 1,
    "macro_conversion": "order_placed",
    "unknown_events": "reject",
    "phases": [{"name": "buy", "milestones": ["order_placed"]}],
    "events": {
        "order_placed": {"kind": "macro", "properties": {"order_id": {"type": "string", "required": True}}},
        "page_viewed": {"kind": "page"},
        "banner_clicked": {"kind": "secondary"},
    },
}

# Version 2 retires banner_clicked and adds promo_viewed.
PLAN_V2 = copy.deepcopy(PLAN_V1)
PLAN_V2["version"] = 2
del PLAN_V2["events"]["banner_clicked"]
PLAN_V2["events"]["promo_viewed"] = {"kind": "secondary", "properties": {"code": {"type": "string"}}}


def variant(change):
    plan = copy.deepcopy(PLAN_V2)
    plan["version"] = 3
    change(plan)
    return plan


def _typo(p):
    p["events"]["promo_viewed"]["properties"]["code"]["requried"] = True


def _two_macros(p):
    p["events"]["promo_viewed"]["kind"] = "macro"


def _lonely_milestone(p):
    p["events"]["step_done"] = {"kind": "milestone"}


def _hashing(p):
    p["events"]["promo_viewed"]["properties"]["code"]["pii"] = "hash"


# (label, plan file content, text the log must show)
BAD_PLANS = [
    ("invalid JSON", '{"version": 3, "events": {', "$: "),
    ("unknown key", variant(_typo), "$.events.promo_viewed.properties.code.requried"),
    ("two macros", variant(_two_macros), "a second macro conversion"),
    ("milestone in no phase", variant(_lonely_milestone), "$.events.step_done"),
    ("hashing plan without pii_hash_key", variant(_hashing), "pii_hash_key"),
]


class ReloadCase(harness.TestCase):

    def start(self, plan=PLAN_V1, **config):
        self.db = harness.fresh_database()
        self.plan_path = harness.write_plan(plan)
        self.d = self.start_daemon(self.db, plan=self.plan_path, **config)
        return self.d

    def send(self, name, result, conn=None, **fields):
        """Post one event; check its result; return (event, response)."""
        e = make_event(name=name, **fields)
        resp = self.d.post_events(e, conn=conn)
        self.assertEqual(resp.status, 202, "%r" % (resp,))
        self.assertEqual(resp.body["results"], [result], "%s: %r" % (name, resp.body))
        return e, resp

    def plan_version_of(self, e):
        return harness.event_rows(self.db, [e["event_id"]])[e["event_id"]]["plan_version"]

    def assert_v1_in_force(self, conn=None):
        e, _ = self.send("banner_clicked", "stored", conn=conn)
        self.assertEqual(self.plan_version_of(e), 1)
        _, resp = self.send("promo_viewed", "rejected", conn=conn)
        self.assertEqual(harness.answer_problems(resp), {0: [("unknown_event", "$.name")]})


class PlanReloadTest(ReloadCase):

    def test_new_plan_takes_effect(self):
        self.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=harness.HTTP_TIMEOUT_S)
        try:
            before, _ = self.send("banner_clicked", "stored", conn=conn)
            self.send("promo_viewed", "rejected", conn=conn)
            local = conn.sock.getsockname()
            harness.replace_file(self.plan_path, PLAN_V2)
            log = self.d.reload()
            self.assertIn("plan version 2", log)
            # The same connection, still open, now gets the new rules.
            promo, _ = self.send("promo_viewed", "stored", conn=conn, props={"code": "X1"})
            self.assertEqual(conn.sock.getsockname(), local, "the connection was not dropped")
            _, resp = self.send("banner_clicked", "rejected", conn=conn)
            self.assertEqual(harness.answer_problems(resp), {0: [("unknown_event", "$.name")]})
        finally:
            conn.close()
        rows = harness.event_rows(self.db, [before["event_id"], promo["event_id"]])
        self.assertEqual(rows[before["event_id"]]["plan_version"], 1, "stored events keep their verdict")
        self.assertEqual((rows[promo["event_id"]]["plan_version"], rows[promo["event_id"]]["kind"]), (2, "secondary"))
        self.assertEqual(self.d.stop(), 0)

    def test_bad_plans_refused(self):
        self.start()
        conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=harness.HTTP_TIMEOUT_S)
        try:
            self.assert_v1_in_force(conn)
            local = conn.sock.getsockname()
            for label, content, why in BAD_PLANS:
                with self.subTest(plan=label):
                    harness.replace_file(self.plan_path, content)
                    log = self.d.reload(expect="refused")
                    self.assertIn("plan version 1", log, "the log says which rules stay")
                    self.assertIn(why, log, "the log says why")
                    self.assert_v1_in_force(conn)
            with self.subTest(plan="missing file"):
                self.d.rewrite_config(plan=self.plan_path + ".missing")
                log = self.d.reload(expect="refused")
                self.assertIn(".missing", log)
                self.assert_v1_in_force(conn)
                self.d.rewrite_config(plan=self.plan_path)
            self.assertEqual(conn.sock.getsockname(), local, "the connection was not dropped")
        finally:
            conn.close()
        # Refusals leave the daemon able to reload a good plan.
        harness.replace_file(self.plan_path, PLAN_V2)
        self.d.reload()
        e, _ = self.send("promo_viewed", "stored")
        self.assertEqual(self.plan_version_of(e), 2)
        self.assertEqual(self.d.stop(), 0)

    def test_bad_configuration_refused(self):
        self.start()
        self.d.rewrite_config(listn="127.0.0.1:1")
        log = self.d.reload(expect="refused")
        self.assertIn("listn", log)
        self.assert_v1_in_force()
        self.d.rewrite_config(listn=None, consent_mode="sometimes")
        self.assertIn("consent_mode", self.d.reload(expect="refused"))
        self.assert_v1_in_force()
        self.assertEqual(self.d.stop(), 0)

    def test_refused_reload_changes_nothing(self):
        """All or nothing: a reload refused for its plan leaves the
        configuration's other keys as they were too (here log_level)."""
        self.start(log_level="info")
        self.d.rewrite_config(log_level="debug", max_batch_events=1)
        harness.replace_file(self.plan_path, '{"version": ')
        self.d.reload(expect="refused")
        mark = self.d.log_mark()
        self.assertAccepted(self.d.post_events({"batch": [make_event(name="page_viewed") for _ in range(2)]}), 2)
        self.d.get("/healthz")
        self.assertNotIn('"level":"debug"', self.d.log()[mark:], "the refused log_level took effect")
        self.assertEqual(self.d.stop(), 0)

    def test_requests_during_reloads(self):
        """Keep-alive connections posting all along while the plan switches
        back and forth: every request is answered 202, every event stored
        once, under one plan version or the other."""
        self.start()
        stop = threading.Event()
        sent, problems = [], []

        def client():
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=harness.HTTP_TIMEOUT_S)
            try:
                conn.connect()
                local = conn.sock.getsockname()
                while not stop.is_set():
                    batch = [make_event(name="page_viewed") for _ in range(3)]
                    resp = self.d.post_events({"batch": batch}, conn=conn)
                    if resp.status != 202 or resp.body.get("accepted") != 3:
                        problems.append(resp)
                        return
                    if conn.sock is None or conn.sock.getsockname() != local:
                        problems.append("connection dropped")
                        return
                    sent.extend(batch)
            except Exception as e:  # reported below
                problems.append(e)
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        try:
            for i in range(6):
                harness.replace_file(self.plan_path, PLAN_V2 if i % 2 == 0 else PLAN_V1)
                self.d.reload()
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(problems, [])
        self.assertGreater(len(sent), 0)
        rows = harness.event_rows(self.db, [e["event_id"] for e in sent])
        self.assertEqual(len(rows), len(sent), "every event stored once")
        self.assertEqual({r["plan_version"] for r in rows.values()} - {1, 2}, set())
        self.assertEqual(self.d.stop(), 0)


class ConfigReloadTest(ReloadCase):

    def test_reloadable_keys(self):
        plan = copy.deepcopy(PLAN_V1)
        plan["events"]["order_placed"]["properties"]["email"] = {"type": "string", "pii": "hash"}
        key1, key2 = "reload-key-one-0123456789", "reload-key-two-0123456789"
        self.start(plan, pii_hash_key=key1)
        e1, _ = self.send("order_placed", "stored", props={"order_id": "O-1", "email": "jo@example.com"})
        self.assertAccepted(self.d.post_events({"batch": [make_event(name="page_viewed") for _ in range(3)]}), 3)

        self.d.rewrite_config(pii_hash_key=key2, max_batch_events=2)
        self.d.reload()
        e2, _ = self.send("order_placed", "stored", props={"order_id": "O-2", "email": "jo@example.com"})
        rows = harness.event_rows(self.db, [e1["event_id"], e2["event_id"]])
        self.assertEqual([rows[e["event_id"]]["props"]["email"] for e in (e1, e2)],
                         [harness.pii_hash("jo@example.com", k) for k in (key1, key2)])
        self.assertError(self.d.post_events({"batch": [make_event(name="page_viewed") for _ in range(3)]}),
                         413, "too_many_events")
        self.assertEqual(self.d.stop(), 0)

    def test_fixed_key_needs_a_restart(self):
        self.start()
        self.d.rewrite_config(http_threads=3)
        log = self.d.reload()
        self.assertIn("http_threads", log)
        self.assertIn("restart", log)
        self.assert_v1_in_force()
        self.assertEqual(self.d.stop(), 0)

    def test_sites_reloaded(self):
        """A site added to the configuration takes events after SIGHUP."""
        self.start()
        news = {"id": "news", "name": "News", "write_key": "wk_news_reload"}
        e = make_event(name="page_viewed")
        self.assertError(self.d.post_events(e, key="wk_news_reload"), 401, "invalid_write_key")
        self.d.rewrite_config(sites=harness.SITES + [news])
        self.d.reload()
        self.assertAccepted(self.d.post_events(e, key="wk_news_reload"), 1)
        self.assertEqual(harness.event_id_counts(self.db, [e["event_id"]], "news"), {e["event_id"]: 1})
        self.assertEqual(psql(self.db, "SELECT active FROM sites WHERE id = 'news'"), [["t"]])
        self.assertEqual(self.d.stop(), 0)


if __name__ == "__main__":
    harness.main()
