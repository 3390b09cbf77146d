"""Helpers for the tests of the query and admin API (API keys, the rejected
events listing and replay, erasure) and of retention. Shared by
test_api_keys.py, test_rejected_api.py, test_replay.py, test_erasure.py and
test_retention.py; not a test program itself."""

import hashlib
import os
import re
import secrets
import time
import urllib.parse
from datetime import datetime, timezone

import harness
from harness import psql, psql_value


# --------------------------------------------------------------------------
# API keys

def sha256_hex(key):
    """What the config stores for an API key: the SHA-256 of its bytes, hex."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_api_key(prefix):
    """A fresh random plaintext API key."""
    return "%s_%s" % (prefix, secrets.token_hex(16))


def key_entry(name, scope, key, sites=None):
    """One api_keys entry of the config for the plaintext key."""
    entry = {"name": name, "scope": scope, "key_sha256": sha256_hex(key)}
    if sites is not None:
        entry["sites"] = sites
    return entry


# The endpoints that take engine=: with MILEPOST_TEST_ENGINE set (sql or
# index, tests/integration/meson.build), every call of them asks for it.
ENGINE_PATHS = ("/api/v1/funnel", "/api/v1/milestones", "/api/v1/signals",
                "/api/v1/attribution")
ENGINE = os.environ.get("MILEPOST_TEST_ENGINE", "")
INDEX_LOAD_TIMEOUT_S = 30


def api_call(daemon, method, path, key=None, params=None, authorization=None, body=None):
    """One call of the query/admin API. key: sent as `Authorization: Bearer
    KEY`; authorization: the raw header value instead; params: a dict or a
    list of pairs for the query string."""
    pairs = list(params.items()) if isinstance(params, dict) else list(params or [])
    engine = ENGINE if path in ENGINE_PATHS and method == "GET" and \
        not any(k == "engine" for k, _ in pairs) else ""
    if engine:
        pairs.append(("engine", engine))
    query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
    url = daemon.url(path + ("?" + query if query else ""))
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization
    elif key is not None:
        headers["Authorization"] = "Bearer " + key
    deadline = time.monotonic() + INDEX_LOAD_TIMEOUT_S
    while True:
        resp = harness.http_request(method, url, headers=headers, body=body)
        why = str(resp.body) if engine == "index" and resp.status == 409 else ""
        # The index loads in the background after /readyz: wait for it.
        if "loading" in why and time.monotonic() < deadline:
            time.sleep(0.05)
            continue
        # A query on what the index does not hold (properties, for
        # instance): PostgreSQL answers it, as with engine=auto.
        if "does not hold" in why:
            return api_call(daemon, method, path, key, [(k, v) for k, v in pairs
                            if k != "engine"] + [("engine", "sql")], authorization, body)
        return resp


def list_rejected(daemon, key, **params):
    return api_call(daemon, "GET", "/api/v1/rejected", key, params)


def replay(daemon, key, **params):
    return api_call(daemon, "POST", "/api/v1/rejected/replay", key, params)


def erase(daemon, key, person, **params):
    path = "/api/v1/people/" + urllib.parse.quote(person, safe="")
    return api_call(daemon, "DELETE", path, key, params)


def parse_time(text):
    """An RFC 3339 timestamp from an answer as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --------------------------------------------------------------------------
# Plans

def plan_doc(version, events, milestones=None, unknown_events="quarantine",
             macro="purchase_completed", phase="decide"):
    """A plan with one phase holding the given milestones (default: every
    event of kind milestone or macro, in the order given)."""
    if milestones is None:
        milestones = [n for n, d in events.items() if d["kind"] in ("milestone", "macro")]
    return {"version": version, "macro_conversion": macro, "unknown_events": unknown_events,
            "phases": [{"name": phase, "milestones": milestones}], "events": events}


# --------------------------------------------------------------------------
# Database

def user_tables(url):
    """Every table of the public schema holding rows (partitioned tables
    stand for their partitions)."""
    return [r[0] for r in psql(url, "SELECT c.relname FROM pg_class c"
                                    " WHERE c.relnamespace = 'public'::regnamespace"
                                    " AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
                                    " ORDER BY 1")]


def rows_mentioning(url, needle):
    """{table: rows} of the user tables whose whole row, as text, contains
    needle (every column: JSON, arrays and all)."""
    found = {}
    for t in user_tables(url):
        n = int(psql_value(url, 'SELECT count(*) FROM "%s" t WHERE strpos(t::text, :\'n\') > 0' % t,
                           n=needle))
        if n:
            found[t] = n
    return found


def event_partitions(url):
    """Names of the monthly partitions of events."""
    return sorted(r[0] for r in psql(url, "SELECT c.relname FROM pg_inherits i"
                                          " JOIN pg_class c ON c.oid = i.inhrelid"
                                          " WHERE i.inhparent = 'events'::regclass"))


def partition_name(dt):
    return "events_%04d_%02d" % (dt.year, dt.month)


def partition_end(name):
    """The first instant after the monthly partition events_YYYY_MM."""
    m = re.fullmatch(r"events_(\d{4})_(\d{2})", name)
    year, month = harness.months_from(datetime(int(m.group(1)), int(m.group(2)), 1), 1)
    return datetime(year, month, 1, tzinfo=timezone.utc)


MAINTENANCE_RE = (r"maintenance: partitions ensured, (\d+) expired event id\(s\) forgotten;"
                  r" retention dropped (\d+) partition\(s\), (\d+) event\(s\), (\d+) rejected event\(s\),"
                  r" (\d+) alert transition\(s\)")


def wait_for_maintenance(daemon, since=0, timeout=20):
    """Waits for the writer's maintenance log line; returns its counts."""
    m = daemon.wait_for_log(MAINTENANCE_RE, since=since, timeout=timeout)
    return {"forgotten_ids": int(m.group(1)), "dropped_partitions": int(m.group(2)),
            "deleted_events": int(m.group(3)), "deleted_rejected": int(m.group(4)),
            "deleted_alert_events": int(m.group(5))}
