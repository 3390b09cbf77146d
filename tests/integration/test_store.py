#!/usr/bin/env python3
"""Schema and configuration: migrate, partitions, sites, the command line."""

import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time

import harness
from harness import (BLOG_KEY, SHOP_KEY, SITES, fresh_database, make_event, months_from,
                     psql, psql_value, run_milepost, utcnow, write_config)


# Configuration errors must stop the start before any database work; should a
# daemon start anyway, it finds no database rather than touching a real one.
NO_DB = harness.db_url("milepost_no_such_database")


def migration_versions():
    """Versions of the migrations shipped in migrations/ (NNNN_name.sql)."""
    names = os.listdir(os.path.join(harness.REPO_ROOT, "migrations"))
    return sorted(int(m.group(1)) for m in (re.match(r"(\d+)_.*\.sql$", n) for n in names) if m)


def project_version():
    with open(os.path.join(harness.REPO_ROOT, "meson.build")) as f:
        return re.search(r"version:\s*'([^']+)'", f.read()).group(1)


class MigrateTest(harness.TestCase):

    def assertSchemaAtLatest(self, db):
        rows = psql(db, "SELECT version, count(*), min(name), min(checksum) FROM schema_migrations"
                        " GROUP BY version ORDER BY version")
        self.assertEqual([(int(r[0]), int(r[1])) for r in rows], [(v, 1) for v in migration_versions()],
                         "each migration recorded exactly once")
        for version, _, name, checksum in rows:
            self.assertTrue(name and checksum, "name and checksum of migration %s: %r" % (version, (name, checksum)))
        self.assertEqual(psql_value(db, "SELECT count(*) FROM pg_class WHERE relname IN"
                                        " ('sites', 'events', 'event_ids', 'rejected_events')"
                                        " AND relnamespace = 'public'::regnamespace"), "4")

    def test_migrate_twice(self):
        db = fresh_database()
        config = write_config(db)
        for attempt in (1, 2):
            p = run_milepost(["--config", config, "migrate"])
            self.assertEqual(p.returncode, 0, "migrate #%d: %s%s" % (attempt, p.stdout, p.stderr))
            self.assertSchemaAtLatest(db)
        applied = psql(db, "SELECT version, applied_at FROM schema_migrations ORDER BY 1")
        p = run_milepost(["migrate", "--config", config])  # options may follow the command
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(psql(db, "SELECT version, applied_at FROM schema_migrations ORDER BY 1"), applied,
                         "nothing re-applied")

    def test_concurrent_migrate(self):
        for round_ in range(3):
            db = fresh_database()
            config = write_config(db)
            procs = [subprocess.Popen([harness.MILEPOST_BIN, "--config", config, "migrate"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      env=harness.milepost_env(), stdin=subprocess.DEVNULL)
                     for _ in range(3)]
            for i, p in enumerate(procs):
                try:
                    out, err = p.communicate(timeout=120)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, err = p.communicate()
                    self.fail("round %d: migrate #%d hung: %s" % (round_, i, err))
                self.assertEqual(p.returncode, 0, "round %d: migrate #%d: %s%s" % (round_, i, out, err))
            self.assertSchemaAtLatest(db)

    def test_migrate_unreachable_database(self):
        config = write_config("postgresql:///nope?host=/nonexistent-milepost-dir&port=1")
        p = run_milepost(["--config", config, "migrate"], timeout=120)
        self.assertEqual(p.returncode, 1, "exit status when the database cannot be reached: %s" % p.stderr)
        self.assertTrue(p.stderr.strip(), "an error message on stderr")

    def test_serve_without_migrations_is_not_ready(self):
        """migrate_on_start=false on an empty database: no schema is created and
        no event is taken. The docs allow either refusing to start (exit 1, a
        runtime failure, with a message) or running with readyz 503 not_ready."""
        db = fresh_database()
        d = self.start_daemon(db, wait=None, migrate_on_start=False)
        try:
            d.wait_for("/healthz")
        except harness.DaemonExited:
            self.assertEqual(d.stop(), 1, "exit status of a refused start")
            self.assertIn("migrat", d.log().lower(), "the message points at the migrations")
        else:
            self.assertError(d.get("/readyz"), 503, "not_ready")
            resp = d.post_events(make_event())
            self.assertEqual(resp.status, 503, "%r" % (resp,))
            self.assertEqual(d.stop(), 0)
        self.assertEqual(psql_value(db, "SELECT to_regclass('events') IS NULL"), "t", "no schema was created")


class PartitionTest(harness.TestCase):

    def partitions(self, db):
        return {r[0] for r in psql(db, "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                                       " WHERE i.inhparent = 'events'::regclass")}

    def expected(self, ahead):
        now = utcnow()
        return {"events_%04d_%02d" % months_from(now, n) for n in range(ahead + 1)}

    def test_partitions_ahead_default(self):
        db = fresh_database()
        d = self.start_daemon(db)
        missing = self.expected(2) - self.partitions(db)
        self.assertEqual(missing, set(), "partitions for this month and the next 2")
        self.assertEqual(d.stop(), 0)

    def test_partitions_ahead_configured(self):
        db = fresh_database()
        d = self.start_daemon(db, partitions_ahead_months=5)
        missing = self.expected(5) - self.partitions(db)
        self.assertEqual(missing, set(), "partitions for this month and the next 5")
        self.assertEqual(d.stop(), 0)

    def test_old_event_gets_its_partition(self):
        db = fresh_database()
        d = self.start_daemon(db, max_event_age_days=36500)
        self.assertNotIn("events_2021_03", self.partitions(db))
        events = [make_event(ts="2021-03-05T10:00:00Z"), make_event(ts="2021-03-31T23:59:59.999+00:00"),
                  make_event(ts="2021-04-01T01:30:00+02:00")]  # 2021-03-31T23:30Z
        self.assertAccepted(d.post_events({"batch": events}), 3)
        rows = psql(db, "SELECT event_id, tableoid::regclass::text FROM events WHERE event_id = ANY (:'ids'::uuid[])",
                    ids=harness.pg_array(e["event_id"] for e in events))
        self.assertEqual(dict(rows), {e["event_id"]: "events_2021_03" for e in events})
        self.assertEqual(d.stop(), 0)


class SitesTest(harness.TestCase):

    def sites(self, db):
        return {r[0]: r[1:] for r in psql(db, "SELECT id, name, write_key, array_to_string(allowed_origins, ' '),"
                                              " active FROM sites")}

    def test_sites_from_config(self):
        db = fresh_database()
        d = self.start_daemon(db)
        self.assertEqual(self.sites(db), {s["id"]: [s["name"], s["write_key"], " ".join(s["allowed_origins"]), "t"]
                                          for s in SITES})
        self.assertEqual(d.stop(), 0)

    def test_site_removed_from_config(self):
        db = fresh_database()
        d = self.start_daemon(db)
        blog_event = make_event()
        self.assertAccepted(d.post_events(blog_event, key=BLOG_KEY), 1)
        self.assertEqual(d.stop(), 0)

        shop = dict(SITES[0], name="Renamed shop")
        d = self.start_daemon(db, sites=[shop])
        sites = self.sites(db)
        self.assertEqual(sites["blog"][3], "f", "blog is no longer active: %r" % (sites,))
        self.assertEqual(sites["shop"], ["Renamed shop", SHOP_KEY, " ".join(shop["allowed_origins"]), "t"])
        ev = make_event()
        self.assertError(d.post_events(ev, key=BLOG_KEY), 401, "invalid_write_key")
        self.assertError(d.post_events(ev, key=None, path="/v1/events?key=" + BLOG_KEY), 401, "invalid_write_key")
        self.assertEqual(harness.event_id_counts(db, [ev["event_id"]], "blog"), {})
        self.assertAccepted(d.post_events(ev, key=SHOP_KEY), 1)
        self.assertEqual(harness.event_id_counts(db, [blog_event["event_id"]], "blog"), {blog_event["event_id"]: 1},
                         "the inactive site's events are kept")
        self.assertEqual(d.stop(), 0)


class CommandLineTest(harness.TestCase):

    def assertConfigError(self, p, key):
        self.assertEqual(p.returncode, 2, "exit status (stderr: %s)" % p.stderr)
        self.assertIn(key.lower(), p.stderr.lower(), "stderr names %s" % key)

    def serve(self, config_path, *args, env=None):
        """Run serve expecting it to stop at once (configuration errors)."""
        return run_milepost(["serve", "--config", config_path] + list(args), env=env, timeout=30)

    def test_version(self):
        p = run_milepost(["version"], timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(project_version(), p.stdout)

    def test_help(self):
        for command in ("serve", "migrate"):
            with self.subTest(command=command):
                p = run_milepost([command, "--help"], timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertTrue(p.stdout.strip(), "help text on stdout")

    def test_unknown_command(self):
        p = run_milepost(["fly"], timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertTrue(p.stderr.strip())

    def test_unknown_config_key(self):
        p = self.serve(write_config(NO_DB, listn="127.0.0.1:1"))
        self.assertConfigError(p, "listn")

    def test_unknown_site_field(self):
        site = dict(SITES[0], writekey="x")
        p = self.serve(write_config(NO_DB, sites=[site]))
        self.assertConfigError(p, "writekey")

    def test_unknown_command_line_option(self):
        p = self.serve(write_config(NO_DB), "--no-such-option", "1")
        self.assertConfigError(p, "no-such-option")

    def test_wrong_type(self):
        for key, value in (("http_threads", "two"), ("migrate_on_start", "yes"), ("listen", 8080),
                           ("sites", {"id": "shop"})):
            with self.subTest(key=key):
                p = self.serve(write_config(NO_DB, **{key: value}))
                self.assertConfigError(p, key)

    def test_out_of_bounds(self):
        for key, value in (("http_threads", 0), ("max_body_bytes", 100), ("log_level", "verbose"),
                           ("writer_threads", 17)):
            with self.subTest(key=key):
                p = self.serve(write_config(NO_DB, **{key: value}))
                self.assertConfigError(p, key)

    def test_wrong_type_in_environment(self):
        p = self.serve(write_config(NO_DB), env={"MILEPOST_HTTP_THREADS": "two"})
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("http_threads", p.stderr.lower().replace("milepost_", ""))

    def test_invalid_site(self):
        for site in (dict(SITES[0], id="Shop!"), dict(SITES[0], write_key="short")):
            with self.subTest(site=site):
                p = self.serve(write_config(NO_DB, sites=[site]))
                self.assertEqual(p.returncode, 2, p.stderr)

    def test_missing_named_config_file(self):
        p = run_milepost(["--config", "/nonexistent/milepost.json", "serve"], timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)

    def test_config_layers(self):
        """file < environment < command line."""
        db = fresh_database()
        d = self.start_daemon(db, env={"MILEPOST_MAX_BATCH_EVENTS": "4"}, args=["--max-batch-events", "2"],
                              max_batch_events=10)
        self.assertAccepted(d.post_events({"batch": [make_event(), make_event()]}), 2)
        self.assertError(d.post_events({"batch": [make_event() for _ in range(3)]}), 413, "too_many_events")
        self.assertEqual(d.stop(), 0)
        d = self.start_daemon(db, env={"MILEPOST_MAX_BATCH_EVENTS": "4"}, max_batch_events=10)
        self.assertAccepted(d.post_events({"batch": [make_event() for _ in range(4)]}), 4)
        self.assertError(d.post_events({"batch": [make_event() for _ in range(5)]}), 413, "too_many_events")
        self.assertEqual(d.stop(), 0)
        d = self.start_daemon(db, args=["--max-batch-events=3"], max_batch_events=10)
        self.assertError(d.post_events({"batch": [make_event() for _ in range(4)]}), 413, "too_many_events")
        self.assertEqual(d.stop(), 0)


class ConfigSourcesTest(harness.TestCase):

    def test_database_url_from_secret_file(self):
        """MILEPOST_DATABASE_URL_FILE names a file holding the value (trailing newline dropped)."""
        db = fresh_database()
        secret = os.path.join(harness.tmpdir(), "database_url.secret")
        with open(secret, "w") as f:
            f.write(db + "\n")
        d = self.start_daemon(NO_DB, env={"MILEPOST_DATABASE_URL_FILE": secret})
        ev = make_event()
        self.assertAccepted(d.post_events(ev), 1)
        self.assertEqual(harness.event_id_counts(db, [ev["event_id"]]), {ev["event_id"]: 1})
        self.assertEqual(d.stop(), 0)

    def test_config_file_from_environment(self):
        db = fresh_database()
        p = run_milepost(["migrate"], env={"MILEPOST_CONFIG": write_config(db)})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(psql_value(db, "SELECT count(*) > 0 FROM schema_migrations"), "t")

    def test_sites_from_environment(self):
        db = fresh_database()
        news = [{"id": "news", "name": "News", "write_key": "wk_news_example"}]
        d = self.start_daemon(db, env={"MILEPOST_SITES": json.dumps(news)})
        ev = make_event()
        self.assertAccepted(d.post_events(ev, key="wk_news_example"), 1)
        self.assertEqual(harness.event_id_counts(db, [ev["event_id"]], "news"), {ev["event_id"]: 1})
        self.assertError(d.post_events(make_event(), key=SHOP_KEY), 401, "invalid_write_key")
        self.assertEqual(psql(db, "SELECT id, active FROM sites"), [["news", "t"]])
        self.assertEqual(d.stop(), 0)

    def test_idle_connection_closed(self):
        db = fresh_database()
        d = self.start_daemon(db, connection_timeout_s=1)
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        try:
            self.assertEqual(harness.http_request("GET", d.url("/healthz"), conn=conn).status, 200)
            conn.sock.settimeout(12)
            started = time.monotonic()
            try:
                data = conn.sock.recv(1)
            except socket.timeout:
                self.fail("idle connection still open after 12 s (connection_timeout_s = 1)")
            except ConnectionResetError:
                data = b""
            self.assertEqual(data, b"", "the server closed the connection")
            self.assertLess(time.monotonic() - started, 12)
        finally:
            conn.close()
        self.assertEqual(d.stop(), 0)


class WriterIsolationTest(harness.DaemonTestCase):
    """A request whose rows PostgreSQL refuses fails alone: the requests
    committed with it in one batch are stored, and the log says why without
    the refused row's values (a visitor's ids). The refusal is a CHECK
    constraint the test adds: the collector validates every input it knows
    PostgreSQL would refuse, so only a schema it does not know can."""
    daemon_config = {"writer_threads": 1, "writer_batch_max_wait_ms": 100}

    def test_refused_request_fails_alone(self):
        poison = "poison-" + harness.new_id()
        psql(self.db, "ALTER TABLE events ADD CONSTRAINT test_poison"
                      " CHECK (anonymous_id NOT LIKE 'poison-%')")
        self.addCleanup(psql, self.db, "ALTER TABLE events DROP CONSTRAINT test_poison")
        mark = self.daemon.log_mark()
        good = [make_event() for _ in range(12)]
        bodies = good[:6] + [make_event(anonymous_id=poison)] + good[6:]
        barrier = threading.Barrier(len(bodies))
        answers = {}

        def client(i, body):
            barrier.wait()
            answers[i] = self.post(body)

        threads = [threading.Thread(target=client, args=(i, b)) for i, b in enumerate(bodies)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(answers), len(bodies), "every client got an answer")
        log = self.daemon.log()[mark:]
        self.assertIn("retrying its requests one by one", log,
                      "the poisoned request shared a batch with others")
        self.assertError(answers[6], 500, "internal_error")
        for i in set(answers) - {6}:
            self.assertAccepted(answers[i], 1)
        self.assertEqual(harness.event_id_counts(self.db, [e["event_id"] for e in good]),
                         {e["event_id"]: 1 for e in good})
        self.assertIn("check constraint", log)
        self.assertNotIn(poison, log, "the refused row's values are not logged")
        self.assertNotIn("Failing row", log)


class HealthTest(harness.DaemonTestCase):

    def test_healthz(self):
        resp = self.daemon.get("/healthz")
        self.assertEqual((resp.status, resp.body), (200, {"status": "ok"}), "%r" % (resp,))
        self.assertJsonType(resp)
        self.assertRequestId(resp)

    def test_readyz(self):
        resp = self.daemon.get("/readyz")
        self.assertEqual((resp.status, resp.body), (200, {"status": "ready", "database": "up"}), "%r" % (resp,))
        self.assertJsonType(resp)
        self.assertRequestId(resp)

    def test_request_ids_differ(self):
        ids = {self.daemon.get("/healthz").headers.get("x-request-id") for _ in range(5)}
        self.assertEqual(len(ids), 5, ids)


if __name__ == "__main__":
    harness.main()
