"""Shared helpers for the Milepost black-box integration tests.

Every test file is a standalone program: it defines unittest.TestCase classes
and ends with ``harness.main()``, which runs them and prints TAP.

The tests talk to the real daemon over HTTP and to a real PostgreSQL through
the ``psql`` client. The test script (tests/run.sh) provides the database:

  MILEPOST_TEST_PGHOST   socket directory of a throwaway cluster
  MILEPOST_TEST_PGPORT   its port
  MILEPOST_TEST_PGUSER   a superuser (trust authentication)
  MILEPOST_TEST_PGBIN    directory holding initdb, pg_ctl, postgres
  MILEPOST_TEST_PGRUNAS  OS user to run those as when the tests run as root

and meson passes the daemon as MILEPOST_BIN. Set MILEPOST_TEST_KEEP=1 to keep
the databases and the temporary directory (configs, daemon logs) afterwards.
"""

import gzip as gziplib
import hashlib
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import unittest
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PGHOST = os.environ.get("MILEPOST_TEST_PGHOST", "")
PGPORT = os.environ.get("MILEPOST_TEST_PGPORT", "5432")
PGUSER = os.environ.get("MILEPOST_TEST_PGUSER", "postgres")
PGBIN = os.environ.get("MILEPOST_TEST_PGBIN", "")
PGRUNAS = os.environ.get("MILEPOST_TEST_PGRUNAS", "")
MILEPOST_BIN = os.environ.get("MILEPOST_BIN") or next(
    (p for p in (os.path.join(REPO_ROOT, "build", d, "server", "milepost") for d in ("test", "."))
     if os.access(p, os.X_OK)), os.path.join(REPO_ROOT, "build", "test", "server", "milepost"))
KEEP = os.environ.get("MILEPOST_TEST_KEEP", "") not in ("", "0")

SHOP_KEY = "wk_shop_example"
BLOG_KEY = "wk_blog_example"
SITES = [
    {"id": "shop", "name": "Example shop", "write_key": SHOP_KEY,
     "allowed_origins": ["https://shop.example"]},
    {"id": "blog", "name": "Example blog", "write_key": BLOG_KEY,
     "allowed_origins": ["https://blog.example"]},
]

READY_TIMEOUT_S = 20     # daemon start until GET /readyz == 200
STOP_TIMEOUT_S = 20      # SIGTERM until exit
HTTP_TIMEOUT_S = 15      # one HTTP exchange

_TMPDIR = None
_DATABASES = []          # (admin url, name) to drop at the end
_DAEMONS = []            # every Daemon started, to kill leftovers at the end
_seen_daemons = []       # daemons running during the current test (for diagnostics)


def tmpdir():
    """The temporary directory of this test program (configs, logs)."""
    global _TMPDIR
    if _TMPDIR is None:
        _TMPDIR = tempfile.mkdtemp(prefix="milepost-it-")
    return _TMPDIR


# --------------------------------------------------------------------------
# SQL through psql

_SEP_FIELD, _SEP_ROW, _NULL = "\x1f", "\x1e", "\x1d"


def _psql_bin():
    cand = os.path.join(PGBIN, "psql") if PGBIN else ""
    return cand if cand and os.access(cand, os.X_OK) else "psql"


def _psql_cmd(url, variables):
    cmd = [_psql_bin(), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
           "-F", _SEP_FIELD, "-R", _SEP_ROW, "-P", "null=" + _NULL, "-d", url]
    for k, v in variables.items():
        cmd += ["-v", "%s=%s" % (k, v)]
    return cmd


def _psql_env():
    env = dict(os.environ)
    env["PGTZ"] = "UTC"
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _parse_rows(out):
    if out == "":
        return []
    if out.endswith("\n"):
        out = out[:-1]
    return [[None if f == _NULL else f for f in row.split(_SEP_FIELD)]
            for row in out.split(_SEP_ROW)]


def psql(url, sql, **variables):
    """Run one SQL statement, return its rows as lists of strings (None for NULL).

    Values are passed as psql variables: psql(url, "select :'x'", x="it's")
    (:'x' is a quoted literal, :"x" a quoted identifier).
    """
    p = subprocess.run(_psql_cmd(url, variables), input=sql, capture_output=True,
                       text=True, env=_psql_env(), timeout=60)
    if p.returncode != 0:
        raise AssertionError("psql failed (%d): %s\nSQL: %s" % (p.returncode, p.stderr.strip(), sql))
    return _parse_rows(p.stdout)


def psql_value(url, sql, **variables):
    """Run a query that returns exactly one value and return it."""
    rows = psql(url, sql, **variables)
    if len(rows) != 1 or len(rows[0]) != 1:
        raise AssertionError("expected one value from %r, got %r" % (sql, rows))
    return rows[0][0]


class PsqlSession:
    """One long-lived psql process, for queries that must run with no delay
    (a fresh psql costs tens of milliseconds to start and connect)."""

    _END = "__milepost_end_of_result__"

    def __init__(self, url):
        cmd = _psql_cmd(url, {})
        cmd.remove("-R")
        cmd.remove(_SEP_ROW)  # one row per line here
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1,
                                     env=_psql_env())

    def query(self, sql):
        """Rows of one statement (without variables; no newlines in values)."""
        self.proc.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo " + self._END + "\n")
        self.proc.stdin.flush()
        rows = []
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                raise AssertionError("psql session died: " + self.proc.stderr.read())
            line = line.rstrip("\n")
            if line == self._END:
                return rows
            rows.append([None if f == _NULL else f for f in line.split(_SEP_FIELD)])

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


def pg_array(values):
    """A PostgreSQL array literal for a psql variable: '{a,b}'."""
    return "{" + ",".join('"%s"' % str(v).replace("\\", "\\\\").replace('"', '\\"')
                          for v in values) + "}"


def db_url(dbname, host=None, port=None, user=None):
    return "postgresql:///%s?%s" % (dbname, urllib.parse.urlencode(
        {"host": host or PGHOST, "port": port or PGPORT, "user": user or PGUSER}))


def fresh_database():
    """Create an empty database in the shared cluster and return its URL.
    It is dropped when the test program ends (unless MILEPOST_TEST_KEEP=1)."""
    name = "t_" + secrets.token_hex(6)
    admin = db_url("postgres")
    psql(admin, 'CREATE DATABASE "%s"' % name)
    _DATABASES.append((admin, name))
    return db_url(name)


def _drop_databases():
    for admin, name in _DATABASES:
        try:
            psql(admin, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
        except Exception as e:  # best effort
            print("# could not drop database %s: %s" % (name, e), flush=True)
    del _DATABASES[:]


def count_rows(url):
    """Row counts of the tables the ingestion path writes to."""
    row = psql(url, "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM rejected_events),"
                    " (SELECT count(*) FROM event_ids)")[0]
    return {"events": int(row[0]), "rejected_events": int(row[1]), "event_ids": int(row[2])}


def stored_event_ids(url, site_id=None):
    """The set of event ids (as lower-case strings) in events, optionally for one site."""
    if site_id is None:
        rows = psql(url, "SELECT event_id FROM events")
    else:
        rows = psql(url, "SELECT event_id FROM events WHERE site_id = :'s'", s=site_id)
    return {r[0] for r in rows}


def event_id_counts(url, ids, site_id="shop"):
    """{event_id: number of rows in events} for the given ids of one site."""
    rows = psql(url, "SELECT event_id, count(*) FROM events WHERE site_id = :'s'"
                     " AND event_id = ANY (:'ids'::uuid[]) GROUP BY event_id",
                s=site_id, ids=pg_array(ids))
    return {r[0]: int(r[1]) for r in rows}


EVENT_COLUMNS = ("site_id", "event_id", "name", "anonymous_id", "user_id", "session_id", "url",
                 "referrer", "props", "consent", "plan_version", "kind", "phase", "consented")


def event_rows(url, ids, site_id=None):
    """{event_id: {column: value}} of the events rows with these ids (props
    and consent parsed, plan_version an int, consented a bool)."""
    sql = ("SELECT site_id, event_id, name, anonymous_id, user_id, session_id, url, referrer,"
           " props::text, consent::text, plan_version, kind, phase, consented FROM events"
           " WHERE event_id = ANY (:'ids'::uuid[])")
    if site_id is not None:
        sql += " AND site_id = :'s'"
    out = {}
    for r in psql(url, sql, ids=pg_array(ids), **({"s": site_id} if site_id is not None else {})):
        row = dict(zip(EVENT_COLUMNS, r))
        row["props"] = json.loads(row["props"])
        row["consent"] = json.loads(row["consent"])
        row["plan_version"] = None if row["plan_version"] is None else int(row["plan_version"])
        row["consented"] = row["consented"] == "t"
        if row["event_id"] in out:
            raise AssertionError("event %s stored twice" % row["event_id"])
        out[row["event_id"]] = row
    return out


def _pg_text_array(text):
    """A one-dimensional text[] as psql prints it, for simple elements."""
    if text is None:
        return None
    inner = text[1:-1]
    return [e.strip('"') for e in inner.split(",")] if inner else []


def rejected_rows(url, request_id):
    """The rejected_events rows of one request, in event order, as dicts
    (payload, errors, consent_overrides parsed; arrays as lists)."""
    keys = ("event_index", "site_id", "payload", "errors", "event_name", "error_codes",
            "quarantined", "derived_anonymous_id", "consent_overrides", "redacted")
    rows = psql(url, "SELECT event_index, site_id, payload::text, errors::text, event_name,"
                     " error_codes::text, quarantined, derived_anonymous_id, consent_overrides::text,"
                     " redacted::text FROM rejected_events WHERE request_id = :'r'"
                     " ORDER BY event_index", r=request_id)
    out = []
    for r in rows:
        row = dict(zip(keys, r))
        row["event_index"] = int(row["event_index"])
        for k in ("payload", "errors", "consent_overrides"):
            row[k] = json.loads(row[k])
        row["error_codes"] = _pg_text_array(row["error_codes"])
        row["redacted"] = _pg_text_array(row["redacted"])
        row["quarantined"] = row["quarantined"] == "t"
        out.append(row)
    return out


def tables_containing(url, needle):
    """{table: number of rows} of every table of the public schema (a
    partitioned table counts its partitions' rows) whose row text contains
    needle, case-insensitively: every column, JSON and arrays included.
    Used to prove that a raw value (an IP, an e-mail) was stored nowhere."""
    tables = [r[0] for r in psql(url, "SELECT c.relname FROM pg_class c"
                                      " WHERE c.relnamespace = 'public'::regnamespace"
                                      " AND c.relkind IN ('r', 'p') AND NOT c.relispartition")]
    found = {}
    for t in tables:
        n = int(psql_value(url, 'SELECT count(*) FROM "%s" t WHERE strpos(lower(t::text), lower(:\'n\')) > 0'
                           % t, n=needle))
        if n:
            found[t] = n
    return found


# --------------------------------------------------------------------------
# Events and time

def new_id():
    return str(uuid.uuid4())


def make_event(**fields):
    """A valid native event with its own event_id and anonymous_id; fields
    override (a value of None removes the field)."""
    ev = {"event_id": new_id(), "name": "page_view",
          "anonymous_id": "anon-" + secrets.token_hex(8)}
    ev.update(fields)
    return {k: v for k, v in ev.items() if v is not None}


def person_event(run, name, who, at, user=None, props=None, **fields):
    """An event of a query fixture at datetime at, with analytics consent:
    the device who and the user id user (either may be None) get the
    suffix run, so that fixtures sharing a database never share people."""
    ev = {"event_id": new_id(), "name": name, "ts": rfc3339(at), "consent": {"analytics": True}}
    if props is not None:
        ev["props"] = props
    ev.update(fields)
    if who:
        ev["anonymous_id"] = "%s-%s" % (who, run)
    if user:
        ev["user_id"] = "%s-%s" % (user, run)
    return ev


def utcnow():
    return datetime.now(timezone.utc)


def rfc3339(dt, timespec="milliseconds"):
    """RFC 3339 text of an aware datetime, 'Z' for UTC."""
    s = dt.isoformat(timespec=timespec)
    return s[:-6] + "Z" if s.endswith("+00:00") else s


def utc_text(dt):
    """The form the tests read timestamps back in (see ts_utc_sql)."""
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def ts_utc_sql(col):
    """SQL rendering a timestamptz column as UTC text comparable with utc_text()."""
    return "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')" % col


def months_from(dt, n):
    """(year, month) n months after dt's month."""
    m = dt.year * 12 + dt.month - 1 + n
    return m // 12, m % 12 + 1


def is_uuid_v7(text):
    return bool(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                             text))


# --------------------------------------------------------------------------
# HTTP

class Response:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.body = raw
        if headers.get("content-type", "").split(";")[0].strip().lower() == "application/json":
            try:
                self.body = json.loads(raw)
            except ValueError:
                pass

    def __iter__(self):  # status, headers, body = http_request(...)
        return iter((self.status, self.headers, self.body))

    def __repr__(self):
        return "<HTTP %s %r %r>" % (self.status, self.headers, self.raw[:500])


def error_code(resp):
    """The code of an error answer, or None when the body is not one."""
    body = resp.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


def encode_body(body):
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def http_request(method, url, body=None, headers=None, gzip=False, chunked=False,
                 timeout=HTTP_TIMEOUT_S, conn=None):
    """One HTTP exchange; returns a Response (status, lower-cased headers, body).

    body: bytes are sent as they are, str as UTF-8, anything else as JSON;
    gzip=True compresses it and sets Content-Encoding; chunked=True sends it
    with Transfer-Encoding: chunked (1 KiB chunks) instead of Content-Length.
    Content-Type defaults to application/json when there is a body; pass
    {"Content-Type": None} to send none. conn: an open
    http.client.HTTPConnection to reuse (keep-alive); otherwise a new
    connection is opened and closed.
    """
    parts = urllib.parse.urlsplit(url)
    data = encode_body(body)
    hdrs = {}
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    if gzip:
        data = gziplib.compress(data)
        hdrs["Content-Encoding"] = "gzip"
    for k, v in (headers or {}).items():
        for existing in [e for e in hdrs if e.lower() == k.lower()]:
            del hdrs[existing]
        if v is not None:
            hdrs[k] = v
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + ("?" + parts.query if parts.query else "")
        try:
            if chunked:
                chunks = (data[i:i + 1024] for i in range(0, len(data), 1024))
                conn.request(method, target, body=chunks, headers=hdrs, encode_chunked=True)
            else:
                conn.request(method, target, body=data, headers=hdrs)
        except (BrokenPipeError, ConnectionResetError):
            # The server may answer (e.g. 413) and close before reading all of
            # the body; its answer is still in our receive buffer.
            pass
        resp = conn.getresponse()
        raw = resp.read()
        headers_out = {}
        for k, v in resp.getheaders():
            k = k.lower()
            headers_out[k] = headers_out[k] + ", " + v if k in headers_out else v
        return Response(resp.status, headers_out, raw)
    finally:
        if own:
            conn.close()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# Tracking plans and the daemon's keyed hashes

def write_json_file(obj, prefix="data-", directory=None):
    """Dump obj (or write str/bytes as they are) to a new file in the
    temporary directory and return its path."""
    fd, path = tempfile.mkstemp(prefix=prefix, suffix=".json", dir=directory or tmpdir())
    with os.fdopen(fd, "wb") as f:
        if isinstance(obj, bytes):
            f.write(obj)
        elif isinstance(obj, str):
            f.write(obj.encode("utf-8"))
        else:
            f.write(json.dumps(obj, indent=2).encode("utf-8"))
    return path


def write_plan(plan, directory=None):
    """A tracking plan (dict, or raw text for broken ones) in a file; its path."""
    return write_json_file(plan, prefix="plan-", directory=directory)


def replace_file(path, obj):
    """Atomically replace path's content with obj (dict as JSON, str, bytes),
    so that a daemon reloading it never reads half a file."""
    tmp = write_json_file(obj, prefix=".tmp-", directory=os.path.dirname(path))
    os.replace(tmp, path)


def read_example_plan():
    with open(os.path.join(REPO_ROOT, "config", "plan.json")) as f:
        return json.load(f)


def pii_hash(value, key):
    """What the daemon stores for a property marked pii: hash: the keyed
    BLAKE2b-256 (hex) of the value, a string as its UTF-8 bytes and anything
    else as its compact JSON text with sorted keys. The key is the raw bytes
    of pii_hash_key when it is 16 to 64 bytes long, else its unkeyed
    BLAKE2b-256 digest."""
    if isinstance(value, str):
        data = value.encode("utf-8")
    else:
        data = json.dumps(value, separators=(",", ":"), sort_keys=True,
                          ensure_ascii=False).encode("utf-8")
    k = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if not 16 <= len(k) <= 64:
        k = hashlib.blake2b(k, digest_size=32).digest()
    return hashlib.blake2b(data, key=k, digest_size=32).hexdigest()


def visitor_id(salt, site_id, ip, user_agent):
    """The cookieless id: "v_" + BLAKE2b-128 keyed with the day's salt over
    site, IP and User-Agent, each as an 8-byte little-endian length and its
    bytes (an absent User-Agent is empty)."""
    h = hashlib.blake2b(key=bytes(salt), digest_size=16)
    for field in (site_id, ip, user_agent or ""):
        b = field.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return "v_" + h.hexdigest()


def todays_salt(url):
    """The salt of the current UTC day in visitor_salts (bytes), or None."""
    rows = psql(url, "SELECT encode(salt, 'hex') FROM visitor_salts"
                     " WHERE day = (now() AT TIME ZONE 'UTC')::date")
    return bytes.fromhex(rows[0][0]) if rows else None


def answer_problems(resp, key="rejected"):
    """{index: [(code, path), ...]} of the errors (key="rejected") of a 202
    answer, or of its warnings (key="warnings")."""
    out = {}
    for entry in resp.body.get(key, []):
        if key == "rejected":
            out[entry["index"]] = [(e["code"], e["path"]) for e in entry["errors"]]
        else:
            out.setdefault(entry["index"], []).append((entry["code"], entry["path"]))
    return out


# --------------------------------------------------------------------------
# The daemon

def write_config(database_url, directory=None, **overrides):
    """Write a JSON config (both sites, the given database) and return its path.
    overrides replace keys; a value of None removes the key."""
    # Rate limits (on by default) off: tests send bursts from one address;
    # test_hostile.py's RateLimitTest checks them, test_config.c the defaults.
    cfg = {"listen": "127.0.0.1:%d" % free_port(), "database_url": database_url,
           "log_level": "info", "sites": SITES, "rate_limit_per_ip": 0, "rate_limit_per_key": 0}
    cfg.update(overrides)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    fd, path = tempfile.mkstemp(prefix="config-", suffix=".json", dir=directory or tmpdir())
    with os.fdopen(fd, "w") as f:
        json.dump(cfg, f, indent=2)
    return path


TEST_ENGINE = os.environ.get("MILEPOST_TEST_ENGINE", "")


def milepost_env(extra=None):
    """The environment for the binary: ours without any MILEPOST_* variable
    (they are configuration to it), plus extra."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILEPOST_")}
    env.update(extra or {})
    return env


def run_milepost(args, env=None, timeout=60):
    """Run the binary to completion; returns subprocess.CompletedProcess (text)."""
    return subprocess.run([MILEPOST_BIN] + list(args), capture_output=True, text=True,
                          env=milepost_env(env), timeout=timeout, stdin=subprocess.DEVNULL)


class Daemon:
    """``milepost serve`` on a free port of 127.0.0.1 with its own config file.

    Daemon(db_url, max_batch_events=5) starts it and waits for GET /readyz to
    answer 200 (wait="healthz" waits for /healthz instead, wait=None not at all).
    args: extra command-line arguments; env: extra environment variables.
    """

    def __init__(self, database_url, args=(), env=None, wait="readyz", **config):
        self.database_url = database_url
        self.config_overrides = config
        self.extra_args = list(args)
        self.extra_env = dict(env or {})
        self.proc = None
        self.exit_code = None
        # The query API's fixture tests run once per engine
        # (tests/integration/meson.build): on sql, with no query index at
        # all; on index, once it has loaded, so that what reads through it
        # without an engine parameter (alerts) does too.
        if TEST_ENGINE == "sql":
            self.extra_env.setdefault("MILEPOST_QUERY_INDEX", "false")
        for attempt in range(3):
            self._start()
            if wait is None:
                return
            try:
                self.wait_for("/" + wait)
                if TEST_ENGINE == "index":
                    self.wait_for_index()
                return
            except DaemonExited:
                if attempt < 2 and re.search(r"in use|EADDRINUSE", self.log_tail(20), re.I):
                    continue  # another program took our port in the meantime
                raise

    def _start(self, port=None):
        self.port = port or free_port()
        self.config_path = write_config(self.database_url, listen="127.0.0.1:%d" % self.port,
                                        **self.config_overrides)
        self.log_path = self.config_path[:-len(".json")] + ".log"
        log = open(self.log_path, "wb")
        self.argv = [MILEPOST_BIN, "serve", "--config", self.config_path] + self.extra_args
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=milepost_env(self.extra_env))
        log.close()
        self.exit_code = None
        _DAEMONS.append(self)
        _seen_daemons.append(self)

    def wait_for(self, path, timeout=READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DaemonExited("milepost exited with %s while starting; log:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            try:
                last = self.get(path, timeout=2)
                if last.status == 200:
                    return
            except (OSError, http.client.HTTPException) as e:
                last = e
            time.sleep(0.1)
        raise AssertionError("GET %s not 200 within %d s (last: %r); log:\n%s"
                             % (path, timeout, last, self.log_tail()))

    def wait_for_index(self, timeout=READY_TIMEOUT_S):
        """Until /metrics says the query index answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            resp = self.get("/metrics", timeout=2)
            if resp.status == 200 and re.search(rb"^milepost_query_index_state 1$",
                                                resp.raw, re.M):
                return
            time.sleep(0.05)
        raise AssertionError("the query index did not load within %d s; log:\n%s"
                             % (timeout, self.log_tail()))

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def get(self, path, **kw):
        return http_request("GET", self.url(path), **kw)

    def post_events(self, payload, key=SHOP_KEY, path="/v1/events", headers=None, **kw):
        """POST payload (an event, {"batch": [...]}, or raw bytes) with the write key
        in X-Milepost-Key (key=None: no header)."""
        hdrs = {"X-Milepost-Key": key} if key is not None else {}
        hdrs.update(headers or {})
        return http_request("POST", self.url(path), body=payload, headers=hdrs, **kw)

    def restart(self):
        """Stop (SIGTERM) and start again on the same port and config
        overrides, waiting for /readyz; for clients that must find it again."""
        self.stop()
        self._start(self.port)
        self.wait_for("/readyz")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if not self.alive():
            raise AssertionError("milepost died with status %s; log:\n%s"
                                 % (self.proc.returncode, self.log_tail()))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        """Wait for the exit; returns the exit status or None on timeout."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM, wait; returns the exit status (negative: killed by a signal).
        Not exiting in time is a failure (the process is then killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            if self.wait(timeout) is None:
                self.kill()
                raise AssertionError("milepost did not exit within %d s of SIGTERM; log:\n%s"
                                     % (timeout, self.log_tail()))
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(self.log().splitlines()[-lines:])

    def log_mark(self):
        """The log's current length, for wait_for_log(since=...)."""
        return len(self.log())

    def wait_for_log(self, pattern, since=0, timeout=15):
        """Wait until the log after offset since matches the regular
        expression pattern; returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(pattern, self.log()[since:])
            if m:
                return m
            if time.monotonic() > deadline:
                raise AssertionError("no log line matching %r within %d s; log:\n%s"
                                     % (pattern, timeout, self.log_tail()))
            self.assert_alive()
            time.sleep(0.05)

    def reload(self, expect="reloaded", timeout=15):
        """SIGHUP, then wait for the daemon to log the outcome: "reloaded"
        or "refused" (a failure if the other one comes). Returns the log
        lines written since the signal."""
        mark = self.log_mark()
        self.signal(signal.SIGHUP)
        m = self.wait_for_log(r'"msg":"(reloaded|reload refused)', since=mark, timeout=timeout)
        outcome = "reloaded" if m.group(1) == "reloaded" else "refused"
        if outcome != expect:
            raise AssertionError("reload %s, expected %s; log:\n%s"
                                 % (outcome, expect, self.log()[mark:]))
        return self.log()[mark:]

    def rewrite_config(self, **overrides):
        """Change keys of the config file the daemon was started with (None
        removes a key), for a reload; the listen address stays."""
        with open(self.config_path) as f:
            cfg = json.load(f)
        cfg.update(overrides)
        replace_file(self.config_path, {k: v for k, v in cfg.items() if v is not None})


class DaemonExited(AssertionError):
    pass


# --------------------------------------------------------------------------
# A private PostgreSQL cluster, for tests that stop the server

class PrivateCluster:
    """initdb'ed cluster of our own: start(), stop(), url(dbname)."""

    def __init__(self):
        # Everything lives in one short directory of its own: the socket path is
        # limited to 107 bytes, and the server user must own the directory.
        self.base = tempfile.mkdtemp(prefix="mp", dir="/tmp")
        self.datadir = os.path.join(self.base, "data")
        self.logfile = os.path.join(self.base, "postgres.log")
        self.sockdir = self.base
        self.port = free_port()
        if PGRUNAS:
            shutil.chown(self.base, user=PGRUNAS)
        self._pg("initdb", "-D", self.datadir, "-U", PGUSER, "-A", "trust", "--no-sync")
        self.running = False

    def _pgbin(self, name):
        if PGBIN:
            return os.path.join(PGBIN, name)
        return shutil.which(name) or name

    def _pg(self, name, *args, timeout=120):
        cmd = [self._pgbin(name)] + list(args)
        if PGRUNAS:
            cmd = ["runuser", "-u", PGRUNAS, "--"] + cmd
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL, cwd=self.base)
        if p.returncode != 0:
            raise AssertionError("%s failed (%d): %s\n%s" % (name, p.returncode, p.stdout, p.stderr))
        return p

    def start(self):
        opts = "-c listen_addresses='' -c unix_socket_directories=%s -c fsync=off -p %d" % (
            self.sockdir, self.port)
        self._pg("pg_ctl", "-D", self.datadir, "-l", self.logfile, "-o", opts, "-w", "-t", "60", "start")
        self.running = True

    def stop(self, mode="fast"):
        self._pg("pg_ctl", "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def url(self, dbname="postgres"):
        return db_url(dbname, host=self.sockdir, port=str(self.port))

    def create_database(self, name="milepost"):
        psql(self.url("postgres"), 'CREATE DATABASE "%s"' % name)
        return self.url(name)

    def destroy(self):
        if self.running:
            try:
                self.stop("immediate")
            except Exception:
                pass
        if not KEEP:
            shutil.rmtree(self.base, ignore_errors=True)


# --------------------------------------------------------------------------
# Test case base class

class TestCase(unittest.TestCase):
    """Base class: helpers for the contract's answers and a check, after every
    test, that the daemons the test used did not die."""

    maxDiff = 4000
    daemons_to_watch = ()

    def setUp(self):
        self._own_daemons = []

    def tearDown(self):
        for d in list(type(self).daemons_to_watch) + self._own_daemons:
            if d.exit_code is None:  # not deliberately stopped
                d.assert_alive()
        for d in self._own_daemons:
            d.kill()

    def start_daemon(self, database_url, **kw):
        """A daemon for this test only: killed after it (stop it to check its exit)."""
        d = Daemon(database_url, **kw)
        self._own_daemons.append(d)
        return d

    def poll(self, what, check, timeout, interval=0.3):
        """Call check() until it returns a true value; returns it, or fails
        after timeout seconds with the newest daemon's log."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                log = self._own_daemons[-1].log_tail() if self._own_daemons else ""
                self.fail("%s: not within %d s; log:\n%s" % (what, timeout, log))
            time.sleep(interval)

    # -- assertions on answers

    def assertPromtoolClean(self, exposition):
        """promtool check metrics prints each lint problem (a name, a type,
        a missing HELP) and exits non-zero; clean, it prints nothing."""
        promtool = os.environ.get("MILEPOST_TEST_PROMTOOL") or shutil.which("promtool")
        self.assertTrue(promtool, "promtool not found: install the Debian package prometheus "
                        "(tests/run.sh does) or set MILEPOST_TEST_PROMTOOL")
        proc = subprocess.run([promtool, "check", "metrics"], input=exposition, capture_output=True,
                              text=True, timeout=60, check=False)
        problems = (proc.stdout + proc.stderr).strip()
        self.assertEqual((proc.returncode, problems), (0, ""), "promtool check metrics:\n" + problems)

    def assertRequestId(self, resp):
        self.assertTrue(resp.headers.get("x-request-id", "").strip(),
                        "no X-Request-Id header in %r" % (resp,))

    def assertJsonType(self, resp):
        ctype = resp.headers.get("content-type", "")
        self.assertEqual(ctype.split(";")[0].strip().lower(), "application/json",
                         "Content-Type of %r" % (resp,))

    def assertError(self, resp, status, code):
        """resp is the error {"error":{"code","message"}} with that status and code."""
        body = resp.body
        self.assertEqual((resp.status, error_code(resp)), (status, code),
                         "expected %d %s, got %r" % (status, code, resp))
        self.assertJsonType(resp)
        self.assertRequestId(resp)
        self.assertEqual(set(body), {"error"}, "error body shape: %r" % (body,))
        self.assertEqual(set(body["error"]), {"code", "message"}, "error body shape: %r" % (body,))
        self.assertIsInstance(body["error"]["message"], str)
        self.assertTrue(body["error"]["message"].strip(), "empty error message: %r" % (body,))

    def assertAccepted(self, resp, accepted, rejected_indexes=()):
        """resp is 202 {"accepted": n, "rejected": [...]} with these counts;
        returns the rejected list."""
        self.assertEqual(resp.status, 202, "expected 202, got %r" % (resp,))
        self.assertJsonType(resp)
        self.assertRequestId(resp)
        self.assertIsInstance(resp.body, dict, "%r" % (resp,))
        self.assertEqual(resp.body.get("accepted"), accepted, "accepted count in %r" % (resp.body,))
        rejected = resp.body.get("rejected", [])
        self.assertIsInstance(rejected, list, "%r" % (resp.body,))
        self.assertEqual(sorted(r.get("index") for r in rejected), sorted(rejected_indexes),
                         "rejected indexes in %r" % (resp.body,))
        return rejected


class DaemonTestCase(TestCase):
    """Tests sharing one fresh database and one daemon per class, started with
    the class attribute daemon_config as config overrides. The daemon must exit
    0 on SIGTERM at the end."""

    daemon_config = {}

    @classmethod
    def setUpClass(cls):
        cls.db = fresh_database()
        cls.daemon = Daemon(cls.db, **cls.daemon_config)
        cls.daemons_to_watch = (cls.daemon,)

    @classmethod
    def tearDownClass(cls):
        code = cls.daemon.stop()
        if code != 0:
            raise AssertionError("milepost exited with status %s on SIGTERM" % code)

    def post(self, payload, **kw):
        return self.daemon.post_events(payload, **kw)


# --------------------------------------------------------------------------
# TAP runner

def _diag(text):
    for line in str(text).splitlines() or [""]:
        print("# " + line)


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.number = 0
        self.reported = set()
        self.all_ok = True
        self.fixture_errors = []   # errors of setUpClass & co, not tied to one test
        self._problems = []
        self._skip = None

    def startTest(self, test):
        super().startTest(test)
        self._problems = []
        self._skip = None
        del _seen_daemons[:]
        _seen_daemons.extend(d for d in _DAEMONS if d.alive())

    def _add_problem(self, test, err):
        if isinstance(test, unittest.case._SubTest):
            label = "subtest %s" % test._subDescription()
        else:
            label = None
        text = "".join(traceback.format_exception(*err))
        self._problems.append((label, text))

    def addError(self, test, err):
        if not isinstance(test, unittest.TestCase) or isinstance(test, unittest.suite._ErrorHolder):
            self.fixture_errors.append((test.id() if hasattr(test, "id") else str(test),
                                        "".join(traceback.format_exception(*err)),
                                        _DAEMONS[-3:]))
            return
        self._add_problem(test, err)

    def addFailure(self, test, err):
        self._add_problem(test, err)

    def addSubTest(self, test, subtest, err):
        if err is not None:
            self._add_problem(subtest, err)

    def addSkip(self, test, reason):
        self._skip = reason

    def addUnexpectedSuccess(self, test):
        self._problems.append((None, "unexpected success"))

    def stopTest(self, test):
        super().stopTest(test)
        self._report(test, self._problems, self._skip, list(_seen_daemons))

    def _report(self, test, problems, skip, daemons):
        self.number += 1
        self.reported.add(test.id())
        name = "%s.%s" % (type(test).__name__, test._testMethodName)
        if skip is not None:
            print("ok %d - %s # SKIP %s" % (self.number, name, skip))
        elif not problems:
            print("ok %d - %s" % (self.number, name))
        else:
            self.all_ok = False
            print("not ok %d - %s" % (self.number, name))
            for label, text in problems:
                if label:
                    _diag(label + ":")
                _diag(text)
            _report_daemon_logs(daemons)
        sys.stdout.flush()


def _report_daemon_logs(daemons):
    seen = set()
    for d in daemons:
        if id(d) in seen:
            continue
        seen.add(id(d))
        _diag("--- tail of milepost log %s (%s) ---" % (d.log_path, " ".join(d.argv[1:])))
        _diag(d.log_tail())


def _flatten(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _flatten(t)
        else:
            yield t


def clear_of_utc_midnight(margin_s):
    """Tests whose fixtures name "yesterday" or "today" (UTC) must not
    straddle midnight: when fewer than margin_s seconds are left of the
    day, wait for the next one."""
    now = utcnow()
    left = (now.replace(hour=0, minute=0, second=0, microsecond=0)
            + timedelta(days=1) - now).total_seconds()
    if left < margin_s:
        _diag("waiting %.0f s for UTC midnight: the fixtures name days" % (left + 1))
        time.sleep(left + 1)


def main(day_bound=False):
    """Run the TestCases of the calling module and print TAP; exit 0 iff all
    ok. day_bound: the module's fixtures name UTC days, so it is run clear
    of midnight (clear_of_utc_midnight), with the module's whole run as the
    margin (5 minutes)."""
    if day_bound:
        clear_of_utc_midnight(300)
    if not PGHOST:
        print("1..0 # SKIP no test database (MILEPOST_TEST_PGHOST is not set; use tests/run.sh)")
        sys.exit(0)
    if not os.access(MILEPOST_BIN, os.X_OK):
        print("1..0 # SKIP no milepost binary at %s (set MILEPOST_BIN)" % MILEPOST_BIN)
        sys.exit(0)
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules["__main__"])
    tests = list(_flatten(suite))
    print("1..%d" % len(tests), flush=True)
    result = TapResult()
    try:
        suite.run(result)
    finally:
        for d in _DAEMONS:
            d.kill()
    # Tests that never ran because a class or module fixture failed.
    fixture_text = "\n".join("%s:\n%s" % (where, text) for where, text, _ in result.fixture_errors)
    for t in tests:
        if t.id() not in result.reported:
            cls = "%s.%s)" % (type(t).__module__, type(t).__qualname__)
            mine = [e for e in result.fixture_errors if e[0].endswith(cls)] or result.fixture_errors
            result._report(t, [("not run, a fixture failed", "\n".join(
                "%s:\n%s" % (where, text) for where, text, _ in mine) or "unknown reason")],
                None, [d for e in mine for d in e[2]])
    # Fixture errors after all tests of a class ran (tearDownClass).
    if result.fixture_errors:
        result.all_ok = False
        _diag("fixture errors:")
        _diag(fixture_text)
        _report_daemon_logs([d for _, _, ds in result.fixture_errors for d in ds])
    if not KEEP:
        _drop_databases()
        if _TMPDIR and result.all_ok:
            shutil.rmtree(_TMPDIR, ignore_errors=True)
    if _TMPDIR and os.path.isdir(_TMPDIR):
        _diag("configs and daemon logs kept in " + _TMPDIR)
    sys.stdout.flush()
    sys.exit(0 if result.all_ok else 1)
