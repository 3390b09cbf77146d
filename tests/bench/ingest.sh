#!/usr/bin/env bash
# tests/bench/ingest.sh - Milepost ingestion benchmark (see docs/performance.md).
#
# One run, on loopback, each load for DURATION seconds:
#   1. bare server  + wrk events.lua, 1 event    (64 connections)   HTTP+JSON baseline for (a)
#   2. daemon       + wrk events.lua, 1 event    (64 connections)   target (a)
#   3. bare server  + wrk events.lua, 100 events (16 connections)   for information
#   4. daemon       + wrk events.lua, 100 events (16 connections)   target (b)
#   5. psql COPY of as many rows into events, 1,000 rows a transaction:
#      the storage baseline for (b)
# then the daemon's peak RSS, a summary with PASS/MISS per target, and the same
# summary in build/bench/result.md.
#
# Targets are ratios against baselines measured in the same run, never absolute
# numbers: (a) daemon req/s >= 50% of the bare server's, daemon p99 <= 20 ms;
# (b) daemon events/s >= 70% of COPY rows/s; daemon peak RSS <= 64 MB.
#
# Usage (as root on Debian 12; installs what is missing with apt-get):
#   tests/bench/ingest.sh
# Environment:
#   DURATION=15       seconds of each measured load
#   WARMUP=3          seconds of unmeasured load before each (0: none)
#   COPY_ROWS=        rows of the COPY baseline (default: those the daemon
#                     stored in step 4, at least COPY_MIN_ROWS)
#   COPY_MIN_ROWS=100000
#   PG_MAX_WAL_SIZE=1GB  PostgreSQL's max_wal_size. A checkpoint starts after
#                     about half of it in WAL: with 1GB one starts during steps
#                     4 and 5 (the summary counts them); 4GB keeps them out
#   SKIP_BUILD=1      use build/bench as it is
# Exit status: 0 all targets met; 3 a target missed; 1 the daemon misbehaved
# (non-2xx answers, stored rows != accepted events, crash) or the run failed.
set -euo pipefail
{ # The whole script is read before it runs, so that editing it cannot upset a run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$ROOT/build/bench
BENCH=$ROOT/tests/bench
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
COPY_ROWS=${COPY_ROWS:-}
COPY_MIN_ROWS=${COPY_MIN_ROWS:-100000}
PG_MAX_WAL_SIZE=${PG_MAX_WAL_SIZE:-1GB}
WRK_THREADS=2
SINGLE_CONNS=64
BATCH_CONNS=16
SITES='[{"id":"bench","name":"Bench","write_key":"wk_bench_key"}]'

# Targets.
T_SINGLE_RATIO=0.50   # daemon req/s / bare req/s
T_SINGLE_P99_MS=20
T_BATCH_RATIO=0.70    # daemon events/s / COPY rows/s
T_RSS_MB=64

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'ingest.sh: %s\n' "$*" >&2; exit 1; }
ANOMALIES=()          # daemon misbehaviour, reported loudly at the end
anomaly() { printf '!! %s\n' "$*" >&2; ANOMALIES+=("$*"); }
SKEWED=()             # loads during which other processes used the CPU

# ---------------------------------------------------------------- dependencies
# shellcheck source=tests/lib/pg.sh
. "$ROOT/tests/lib/pg.sh"   # mp_install_packages, mp_pg_* (private clusters)
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"     # bench_build
mapfile -t PKGS < <(mp_build_packages)
mp_install_packages "${PKGS[@]}" wrk curl
PG_BINDIR=$(mp_pg_bindir)

# ------------------------------------------------------------- one at a time
# Two runs at once would share build/bench and skew each other's figures.
mkdir -p "$ROOT/build"
exec 9>"$ROOT/build/.bench.lock"
if ! flock -n 9; then
	log "another ingest.sh run is going on; waiting for it to end"
	flock 9
fi

# ---------------------------------------------------------------------- build
if [ -z "${SKIP_BUILD:-}" ]; then
	log "building release into build/bench"
	bench_build "$ROOT" "$BUILD"
	# What was built, for the summary (SKIP_BUILD runs report it too).
	echo "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')" >"$BUILD/bench-commit"
fi
MILEPOST=$BUILD/server/milepost
BARE=$BUILD/tests/bench/bench-bare-server
[ -x "$MILEPOST" ] || die "no $MILEPOST"
[ -x "$BARE" ] || die "no $BARE"

# -------------------------------------------------------- processes, clean-up
WORK=$(mktemp -d /tmp/mpb.XXXXXX)   # logs, the COPY file, the cluster
chmod 755 "$WORK"                   # reachable by postgres when we are root
PGDATA=$WORK/pg
BARE_PID='' DAEMON_PID='' PG_STARTED='' PGSOCK=''
LOGS=$BUILD/logs                    # the logs are kept there

stop_pid() { # PID: SIGTERM, then wait up to 10 s, then SIGKILL
	local pid=$1 i
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
	wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
	set +e
	stop_pid "$BARE_PID"
	stop_pid "$DAEMON_PID"
	[ -n "$PG_STARTED" ] && mp_pg_stop "$PGDATA"
	mkdir -p "$LOGS" && cp "$WORK"/*.log "$LOGS"/ 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ PostgreSQL
# A private cluster (socket only, in $WORK/s), durable as in production: fsync
# and synchronous_commit on. Its superuser is milepost, which the daemon uses.
log "starting PostgreSQL in $PGDATA"
PGSOCK=$(mp_pg_sockdir "$WORK/s")
PGPORT=$(mp_pg_free_port)
mp_pg_init "$PGDATA" -N
mp_pg_start "$PGDATA" "$PGSOCK" "$PGPORT" \
	fsync=on synchronous_commit=on full_page_writes=on max_wal_size="$PG_MAX_WAL_SIZE"
PG_STARTED=1
PG_PID=$(head -1 "$PGDATA/postmaster.pid")

sql() { # DB SQL...: one value per line
	local db=$1; shift
	"$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -U milepost -d "$db" -c "$*"
}
sql postgres "CREATE DATABASE mp_daemon"   # steps 2 and 4
sql postgres "CREATE DATABASE mp_copy"     # step 5
db_url() { echo "postgresql:///$1?host=$PGSOCK&port=$PGPORT&user=milepost"; }

# The daemon's environment; an empty config file keeps config/milepost.json out.
echo '{}' >"$WORK/empty.json"
milepost_env() { # DB: sets MP_ENV, the environment for milepost on database DB
	MP_ENV=(MILEPOST_CONFIG="$WORK/empty.json" MILEPOST_DATABASE_URL="$(db_url "$1")"
		MILEPOST_SITES="$SITES" MILEPOST_LOG_LEVEL=warn
		MILEPOST_RATE_LIMIT_PER_IP=0 MILEPOST_RATE_LIMIT_PER_KEY=0)
}
milepost() { # DB COMMAND...: run milepost in the foreground
	local db=$1; shift
	milepost_env "$db"
	env "${MP_ENV[@]}" "$MILEPOST" "$@"
}
for db in mp_daemon mp_copy; do
	milepost "$db" migrate >>"$WORK/migrate.log" 2>&1 ||
		{ cat "$WORK/migrate.log" >&2; die "milepost migrate $db failed"; }
done

# ------------------------------------------------------------ CPU accounting
# CPU seconds used during a load, per party, from /proc: a server's own threads;
# the whole cluster (postmaster, its children, and children it has reaped); and
# the machine's busy share. wrk's and psql's come from bash's `time`.
TCK=$(getconf CLK_TCK)
proc_ticks() { # PID [reaped]: utime+stime of all its threads (+cutime+cstime)
	local s f
	read -r s 2>/dev/null <"/proc/$1/stat" || { echo 0; return; }
	read -ra f <<<"${s##*) }"   # fields from 3 (state) on: field N is f[N-3]
	if [ "${2:-}" = reaped ]; then echo $(( f[11] + f[12] + f[13] + f[14] ))
	else echo $(( f[11] + f[12] )); fi
}
pg_ticks() { # the cluster's processes
	local total f s v
	total=$(proc_ticks "$PG_PID" reaped)
	for f in /proc/[0-9]*/stat; do
		read -r s 2>/dev/null <"$f" || continue
		read -ra v <<<"${s##*) }"
		if [ "${v[1]}" = "$PG_PID" ]; then total=$(( total + v[11] + v[12] )); fi
	done
	echo "$total"
}
others_ticks() { # CPU used so far by everything but this run: "U TICKS" for
	# user processes, then "K PID TICKS" per kernel thread (kthreadd's children).
	# A user process that exits is reaped into its parent's cutime/cstime, so a
	# difference of two user totals is the CPU used between them, short-lived
	# processes included. Kernel threads are reaped by nobody: they are
	# compared thread by thread. Ours, left out: this shell and its children
	# (wrk, psql, curl... reaped into its cutime), the servers, the cluster.
	local f s v user=0 pid
	for f in /proc/[0-9]*/stat; do
		read -r s 2>/dev/null <"$f" || continue
		pid=${s%% *}
		read -ra v <<<"${s##*) }"
		case " $pid ${v[1]} " in
		*" $$ "* | *" $BASHPID "* | *" $PG_PID "* | *" ${BARE_PID:-x} "* | *" ${DAEMON_PID:-x} "*) continue ;;
		esac
		if [ "$pid" = 2 ] || [ "${v[1]}" = 2 ]; then
			echo "K $pid $(( v[11] + v[12] ))"
		else
			user=$(( user + v[11] + v[12] + v[13] + v[14] ))
		fi
	done
	echo "U $user"
}
others_pct() { # BEFORE AFTER SECONDS (from others_ticks): "USER% KERNEL%"
	awk -v secs="$3" -v hz="$TCK" '
		FNR == NR { if ($1 == "U") u0 = $2; else k0[$2] = $3; next }
		$1 == "U" { u = $2 - u0; next }
		{ k += $3 - ($2 in k0 ? k0[$2] : 0) }
		END { if (u < 0) u = 0; printf "%.0f %.0f\n", u / hz / secs * 100, k / hz / secs * 100 }
	' <(echo "$1") <(echo "$2")
}
machine_ticks() { # "busy steal total", all cores, from the first line of /proc/stat
	local u n s i w irq soft steal
	read -r _ u n s i w irq soft steal _ </proc/stat
	echo "$(( u + n + s + irq + soft )) $(( steal )) $(( u + n + s + i + w + irq + soft + steal ))"
}
pct() { awk -v t="$1" -v s="$2" -v hz="$TCK" 'BEGIN { printf "%.0f", t / hz / s * 100 }'; }
task_ticks() { # PID: one line per thread, "TID NAME TICKS"
	local t s f name
	for t in /proc/"$1"/task/*/stat; do
		read -r s 2>/dev/null <"$t" || continue
		name=${s#*(}; name=${name%)*}
		read -ra f <<<"${s##*) }"
		echo "${s%% *} ${name// /_} $(( f[11] + f[12] ))"
	done
}
thread_share() { # BEFORE AFTER SECONDS (from task_ticks): busiest threads, in %
	awk -v secs="$3" -v hz="$TCK" '
		FNR == NR { before[$1] = $3; next }
		{ p = ($3 - before[$1]) / hz / secs * 100; if (p >= 1) printf "%.0f %s\n", p, $2 }
	' <(echo "$1") <(echo "$2") | sort -rn | head -6 | awk '{ printf "%s%s %s%%", (NR > 1 ? ", " : ""), $2, $1 }'
}
pg_activity() { # DB: "COMMITS WAL_BYTES WAL_SYNCS CHECKPOINTS" so far
	sql "$1" "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()),
		wal_bytes, wal_sync, (SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter)
		FROM pg_stat_wal" | tr '|' ' '
}
pg_share() { # BEFORE AFTER SECONDS EVENTS (from pg_activity)
	local c0 w0 s0 k0 c1 w1 s1 k1
	read -r c0 w0 s0 k0 <<<"$1"
	read -r c1 w1 s1 k1 <<<"$2"
	awk -v c=$((c1 - c0)) -v w=$((w1 - w0)) -v s=$((s1 - s0)) -v k=$((k1 - k0)) -v secs="$3" -v ev="$4" \
		'BEGIN { printf "%d commits (%.0f/s, %.1f events each), WAL %.0f MB (%.0f bytes/event), %d WAL syncs (%.0f/s), %d checkpoints",
			c, c / secs, ev / (c ? c : 1), w / 1048576, w / (ev ? ev : 1), s, s / secs, k }'
}
machine_share() { # BEFORE AFTER ACCOUNTED (from machine_ticks; ACCOUNTED: % of one
	# core used by every process measured): the machine's busy share, hypervisor
	# steal, and the CPU no process was charged with (interrupt handling, e.g.
	# of loopback TCP, when the kernel accounts it apart).
	local b0 s0 t0 b1 s1 t1
	read -r b0 s0 t0 <<<"$1"
	read -r b1 s1 t1 <<<"$2"
	awk -v b=$((b1 - b0)) -v s=$((s1 - s0)) -v t=$((t1 - t0)) -v n="$(nproc)" -v acc="$3" \
		'BEGIN { printf "unaccounted %.0f%%; machine busy %.0f%% of %d cores, steal %.0f%%",
			b / t * n * 100 - acc, b / t * 100, n, s / t * 100 }'
}


# ------------------------------------------------------------------------ wrk
# The value of KEY in a RESULT line from events.lua.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }   # EXPR [DECIMALS]

# Rows in events of DB, once the count stops moving (answers in flight settle).
stable_count() {
	local db=$1 a b i
	a=$(sql "$db" "SELECT count(*) FROM events")
	for i in $(seq 40); do
		sleep 0.5
		b=$(sql "$db" "SELECT count(*) FROM events")
		[ "$a" = "$b" ] && break
		a=$b
	done
	echo "$a"
}

# run_load NAME SCRIPT CONNS SERVER_PID PORT [DB]: a warm-up, then the measured
# load. Sets RES[NAME] (the RESULT line) and CPU[NAME] (who used the CPU, in %
# of one core) and THREADS[NAME] (the server's busiest threads). With DB, also
# ROWS[NAME], the rows the measured load added to events, and PGACT[NAME]:
# transactions committed and WAL written meanwhile in PostgreSQL.
declare -A RES CPU ROWS THREADS PGACT
run_load() {
	local name=$1 per_request=$2 conns=$3 spid=$4 url="http://127.0.0.1:$5/v1/events" db=${6:-}
	local s0 p0 m0 s1 p1 m1 n0 n1 a0 a1 t0 t1 o0 o1 cs cp cw ou ok wcpu line
	if [ "$WARMUP" -gt 0 ]; then
		EVENTS_PER_REQUEST=$per_request wrk -t"$WRK_THREADS" -c"$conns" -d"${WARMUP}s" -s "$BENCH/events.lua" "$url" >/dev/null
	fi
	if [ -n "$db" ]; then   # each write load starts from a checkpoint
		n0=$(stable_count "$db")
		sql postgres CHECKPOINT
	fi
	[ -z "$db" ] || a0=$(pg_activity "$db")
	t0=$(task_ticks "$spid"); o0=$(others_ticks)
	s0=$(proc_ticks "$spid"); p0=$(pg_ticks); m0=$(machine_ticks)
	local TIMEFORMAT='%U %S'
	{ time EVENTS_PER_REQUEST=$per_request wrk -t"$WRK_THREADS" -c"$conns" -d"${DURATION}s" --timeout 10s --latency \
		-s "$BENCH/events.lua" "$url" >"$WORK/wrk-$name.log" 2>&1; } 2>"$WORK/time-$name"
	s1=$(proc_ticks "$spid"); p1=$(pg_ticks); m1=$(machine_ticks)
	o1=$(others_ticks); t1=$(task_ticks "$spid")
	line=$(grep '^RESULT ' "$WORK/wrk-$name.log") ||
		{ cat "$WORK/wrk-$name.log" >&2; die "wrk gave no result for $name"; }
	RES[$name]=$line
	wcpu=$(awk -v hz="$TCK" '{ printf "%.0f", ($1 + $2) * hz }' "$WORK/time-$name")
	cs=$(pct $((s1 - s0)) "$DURATION"); cp=$(pct $((p1 - p0)) "$DURATION"); cw=$(pct "$wcpu" "$DURATION")
	read -r ou ok <<<"$(others_pct "$o0" "$o1" "$DURATION")"
	CPU[$name]="server $cs%, postgres $cp%, wrk $cw%, other processes $ou%, kernel threads $ok%, $(machine_share "$m0" "$m1" $((cs + cp + cw + ou + ok)))"
	[ "$ou" -le 10 ] || SKEWED+=("$name (other processes used $ou% of a core)")
	log "$name: $line"
	THREADS[$name]=$(thread_share "$t0" "$t1" "$DURATION")
	log "$name: CPU: ${CPU[$name]}"
	log "$name: server threads: ${THREADS[$name]}"
	if [ -n "$db" ]; then
		n1=$(stable_count "$db")
		ROWS[$name]=$(( n1 - n0 ))
		sleep 1.5   # backends report their statistics at most once a second
		a1=$(pg_activity "$db")
		PGACT[$name]=$(pg_share "$a0" "$a1" "$DURATION" "${ROWS[$name]}")
		log "$name: PostgreSQL: ${PGACT[$name]}"
	fi
}

# check_daemon NAME CONNS: answers and stored rows of a daemon load. Every event
# of a 2xx answer must be stored. wrk stops with up to CONNS requests
# unanswered, which the daemon may still commit: up to CONNS x events-per-request
# extra rows are expected, but no fewer than accepted.
declare -A CHECK
check_daemon() {
	local name=$1 conns=$2 line=${RES[$1]} per ok stored
	per=$(field "$line" events_per_request)
	ok=$(( ($(field "$line" requests) - $(field "$line" non2xx)) * per ))
	stored=${ROWS[$name]}
	CHECK[$name]="$stored rows stored for $ok events accepted ($((stored - ok)) more: answers in flight when wrk stopped, at most $((conns * per)))"
	if [ "$stored" -lt "$ok" ] || [ "$stored" -gt $(( ok + conns * per )) ]; then
		anomaly "$name: ROW COUNT MISMATCH: $stored rows stored for $ok events accepted (expected $ok..$(( ok + conns * per )))"
	fi
	[ "$(field "$line" non2xx)" = 0 ] || anomaly "$name: $(field "$line" non2xx) answers with status >= 400"
	[ "$(field "$line" sockerr)" = 0 ] || anomaly "$name: $(field "$line" sockerr) connect/read/write errors"
	[ "$(field "$line" timeouts)" = 0 ] || anomaly "$name: $(field "$line" timeouts) requests unanswered after 10 s"
	if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		local rc=0; wait "$DAEMON_PID" || rc=$?
		DAEMON_PID=
		anomaly "$name: THE DAEMON DIED (exit status $rc)"
	fi
	log "$name: ${CHECK[$name]}"
}

wait_port() { # PORT PID: until something answers HTTP on PORT; fails if PID dies
	local i
	for i in $(seq 300); do
		kill -0 "$2" 2>/dev/null || return 1
		curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
		sleep 0.1
	done
	return 1
}
peak_rss_kb() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }

# ------------------------------------------------------------------ the loads
BARE_PORT=$(mp_pg_free_port)
"$BARE" "$BARE_PORT" 2>"$WORK/bare.log" &
BARE_PID=$!
wait_port "$BARE_PORT" "$BARE_PID" || die "the bare server did not start: $(cat "$WORK/bare.log")"

DAEMON_PORT=$(mp_pg_free_port)
# Not through the milepost function: $! must be the daemon itself (env execs it).
milepost_env mp_daemon
env "${MP_ENV[@]}" MILEPOST_LISTEN="127.0.0.1:$DAEMON_PORT" "$MILEPOST" serve >"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
for i in $(seq 301); do   # ready: connected to PostgreSQL, schema migrated
	curl -sf -o /dev/null "http://127.0.0.1:$DAEMON_PORT/readyz" && break
	if [ "$i" = 301 ] || ! kill -0 "$DAEMON_PID" 2>/dev/null; then
		tail -20 "$WORK/daemon.log" >&2
		die "the daemon did not become ready in 30 s"
	fi
	sleep 0.1
done

# The machine should be idle: anything else running skews every figure.
o0=$(others_ticks); m0=$(machine_ticks); sleep 2; m1=$(machine_ticks); o1=$(others_ticks)
read -r ou ok <<<"$(others_pct "$o0" "$o1" 2)"
IDLE_CHECK="before the loads, with everything started and idle: other processes $ou%, kernel threads $ok%, $(machine_share "$m0" "$m1" 0 | sed 's/unaccounted[^;]*; //')"
log "$IDLE_CHECK"
IDLE_BUSY=$(sed -n 's/.*machine busy \([0-9]*\)%.*/\1/p' <<<"$IDLE_CHECK")
if [ "$IDLE_BUSY" -gt 10 ]; then
	IDLE_CHECK="$IDLE_CHECK. **The machine was not idle: something else is running, every figure is skewed**"
	log "WARNING: the machine is $IDLE_BUSY% busy before the loads: the figures will be skewed"
fi
log "1/5 bare server, single events, $SINGLE_CONNS connections, ${DURATION}s"
run_load bare_single 1 "$SINGLE_CONNS" "$BARE_PID" "$BARE_PORT"

log "2/5 daemon, single events, $SINGLE_CONNS connections, ${DURATION}s"
run_load daemon_single 1 "$SINGLE_CONNS" "$DAEMON_PID" "$DAEMON_PORT" mp_daemon
check_daemon daemon_single "$SINGLE_CONNS"

log "3/5 bare server, batches of 100, $BATCH_CONNS connections, ${DURATION}s"
run_load bare_batch 100 "$BATCH_CONNS" "$BARE_PID" "$BARE_PORT"
BARE_HWM_KB=$(peak_rss_kb "$BARE_PID")
stop_pid "$BARE_PID"; BARE_PID=

[ -n "$DAEMON_PID" ] || { tail -20 "$WORK/daemon.log" >&2; exit 1; }
log "4/5 daemon, batches of 100, $BATCH_CONNS connections, ${DURATION}s"
run_load daemon_batch 100 "$BATCH_CONNS" "$DAEMON_PID" "$DAEMON_PORT" mp_daemon
check_daemon daemon_batch "$BATCH_CONNS"
[ -n "$DAEMON_PID" ] || { tail -20 "$WORK/daemon.log" >&2; exit 1; }
HWM_KB=$(peak_rss_kb "$DAEMON_PID")   # peak over the whole run: the RSS target
stop_pid "$DAEMON_PID"; DAEMON_PID=
EVENTS_TOTAL=$(sql mp_daemon "SELECT count(*) FROM events")
DAEMON_TABLE=$(sql mp_daemon "SELECT pg_size_pretty(pg_total_relation_size('events'::regclass) + coalesce(sum(pg_total_relation_size(inhrelid)), 0)) FROM pg_inherits WHERE inhparent = 'events'::regclass")

# ------------------------------------------------------------- raw COPY (5)
# The storage baseline: the same rows, as the daemon stores them, written by
# psql COPY into events of the second database, 1,000 rows a transaction (the
# daemon's writer_batch_max_events), in one session. The file is generated
# first; only psql is timed.
[ -n "$COPY_ROWS" ] || COPY_ROWS=$(( ROWS[daemon_batch] > COPY_MIN_ROWS ? ROWS[daemon_batch] : COPY_MIN_ROWS ))
log "5/5 raw COPY of $COPY_ROWS rows, 1,000 a transaction"
python3 - "$COPY_ROWS" >"$WORK/copy.sql" <<'PY'
# Rows shaped as the daemon stores events.lua's batch events: site bench, a UUIDv7
# event_id (time-ordered, as the daemon generates), ts = received_at = now
# (no client ts), sent_at and user_id NULL, props and consent as sent.
import json, random, sys, time
from datetime import datetime, timedelta, timezone

rows = int(sys.argv[1])
names = ["page_viewed", "product_viewed", "product_added", "checkout_started", "order_completed"]
categories = ["shoes/running", "shoes/hiking", "apparel/jackets", "apparel/socks", "gear/packs"]
start = datetime.now(timezone.utc)
ms0 = int(start.timestamp() * 1000)
out = sys.stdout
cols = ("site_id, event_id, name, ts, received_at, sent_at, anonymous_id, user_id, "
        "session_id, url, referrer, props, consent")
for n in range(rows):
    if n % 1000 == 0:
        if n:
            out.write("\\.\nCOMMIT;\n")
        out.write(f"BEGIN;\nCOPY events ({cols}) FROM STDIN;\n")
    i = n % 100 + 1   # the event's place in events.lua's batch
    u = (ms0 + n // 100) << 80 | 0x7 << 76 | random.getrandbits(12) << 64 | 0b10 << 62 | random.getrandbits(62)
    h = f"{u:032x}"
    ts = (start + timedelta(microseconds=n)).isoformat(sep=" ")
    props = {"sku": f"TRG-{4400 + i:04d}-BLU-42", "price": float(f"{20 + i % 180}.9"),
             "currency": "EUR", "category": categories[i % 5], "in_stock": True}
    consent = {"analytics": True, "marketing": i % 3 == 0}
    out.write("\t".join((
        "bench", f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", names[i % 5], ts, ts, r"\N",
        f"7c9e6679-7425-40de-944b-{i % 37:012d}", r"\N", f"s_3f2a9c1e5b7d4f60{i % 11:04d}",
        f"https://shop.example/products/trail-runner-gtx-{i}?size=42&utm_source=newsletter&utm_medium=email&utm_campaign=spring",
        "https://www.google.com/search?q=trail+running+shoes",
        json.dumps(props, separators=(",", ":")), json.dumps(consent, separators=(",", ":")))) + "\n")
out.write("\\.\nCOMMIT;\n")
PY
sql postgres CHECKPOINT
a0=$(pg_activity mp_copy)
o0=$(others_ticks); p0=$(pg_ticks); m0=$(machine_ticks)
TIMEFORMAT='%R %U %S'
{ time "$PG_BINDIR/psql" -Xq -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -U milepost -d mp_copy \
	-f "$WORK/copy.sql" >"$WORK/copy.log" 2>&1; } 2>"$WORK/time-copy" ||
	{ cat "$WORK/copy.log" >&2; die "COPY failed"; }
m1=$(machine_ticks); o1=$(others_ticks)
sleep 0.5   # psql's backend exits after psql: let the postmaster reap it (cutime)
p1=$(pg_ticks)
read -r COPY_S psql_u psql_s <"$WORK/time-copy"
copied=$(sql mp_copy "SELECT count(*) FROM events")
[ "$copied" = "$COPY_ROWS" ] || die "COPY stored $copied rows, not $COPY_ROWS"
COPY_RPS=$(calc "$COPY_ROWS / $COPY_S" 0)
cp=$(pct $((p1 - p0)) "$COPY_S"); cq=$(calc "($psql_u + $psql_s) / $COPY_S * 100" 0)
read -r ou ok <<<"$(others_pct "$o0" "$o1" "$COPY_S")"
CPU[copy]="postgres $cp%, psql $cq%, other processes $ou%, kernel threads $ok%, $(machine_share "$m0" "$m1" $((cp + cq + ou + ok)))"
[ "$ou" -le 10 ] || SKEWED+=("copy (other processes used $ou% of a core)")
log "copy: $COPY_ROWS rows in ${COPY_S}s: $COPY_RPS rows/s"
log "copy: CPU: ${CPU[copy]}"
sleep 1
PGACT[copy]=$(pg_share "$a0" "$(pg_activity mp_copy)" "$COPY_S" "$COPY_ROWS")
log "copy: PostgreSQL: ${PGACT[copy]}"

# -------------------------------------------------------------------- summary
r() { field "${RES[$1]}" "$2"; }   # NAME KEY
verdict() { awk "BEGIN { exit !($1) }" && echo PASS || echo MISS; }
MISSED=
bs_rps=$(r bare_single rps); ds_rps=$(r daemon_single rps)
ds_p99=$(r daemon_single p99_ms)
db_eps=$(calc "($(r daemon_batch requests) - $(r daemon_batch non2xx)) * $(r daemon_batch events_per_request) / $(r daemon_batch duration_s)" 0)
single_ratio=$(calc "$ds_rps / $bs_rps" 3)
batch_ratio=$(calc "$db_eps / $COPY_RPS" 3)
hwm_mb=$(calc "$HWM_KB / 1024" 1)
v_single=$(verdict "$single_ratio >= $T_SINGLE_RATIO")
v_p99=$(verdict "$ds_p99 <= $T_SINGLE_P99_MS")
v_batch=$(verdict "$batch_ratio >= $T_BATCH_RATIO")
v_rss=$(verdict "$hwm_mb <= $T_RSS_MB")
[[ "$v_single$v_p99$v_batch$v_rss" == *MISS* ]] && MISSED=1

{
	echo "# Milepost ingest benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -sr)."
	echo "Commit $(cat "$BUILD/bench-commit" 2>/dev/null || echo '?'), release build${SKIP_BUILD:+ (not rebuilt: SKIP_BUILD)}; $("$PG_BINDIR/postgres" --version), fsync and synchronous_commit on, max_wal_size $PG_MAX_WAL_SIZE."
	if [ ${#SKEWED[@]} -gt 0 ]; then
		echo
		echo "**Skewed: other processes used the CPU during: $(IFS=,; echo "${SKEWED[*]}"). Run again on a quiet machine.**"
		echo
	fi
	echo "Each load ${DURATION}s after a ${WARMUP}s warm-up; wrk $WRK_THREADS threads; bodies of events.lua: $(r bare_single body_bytes) bytes with 1 event, $(r bare_batch body_bytes) bytes with 100."
	echo
	echo "| load | conns | req/s | events/s | p50 ms | p99 ms | max ms | status >= 400 | socket errors + timeouts |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for n in bare_single daemon_single bare_batch daemon_batch; do
		c=$SINGLE_CONNS; [[ $n == *batch ]] && c=$BATCH_CONNS
		echo "| $n | $c | $(r $n rps) | $(calc "$(r $n rps) * $(r $n events_per_request)" 0) | $(r $n p50_ms) | $(r $n p99_ms) | $(r $n max_ms) | $(r $n non2xx) | $(( $(r $n sockerr) + $(r $n timeouts) )) |"
	done
	echo "| raw COPY | 1 psql | | $COPY_RPS rows/s ($COPY_ROWS rows in ${COPY_S}s) | | | | | |"
	echo
	echo "| target | measured | verdict |"
	echo "|---|---|---|"
	echo "| (a) daemon req/s >= $(calc "$T_SINGLE_RATIO * 100" 0)% of bare server's | $ds_rps / $bs_rps = $(calc "$single_ratio * 100" 1)% | $v_single |"
	echo "| (a) daemon p99 <= $T_SINGLE_P99_MS ms | $ds_p99 ms | $v_p99 |"
	echo "| (b) daemon events/s >= $(calc "$T_BATCH_RATIO * 100" 0)% of raw COPY rows/s | $db_eps / $COPY_RPS = $(calc "$batch_ratio * 100" 1)% | $v_batch |"
	echo "| daemon peak RSS (VmHWM) <= $T_RSS_MB MB | $hwm_mb MB | $v_rss |"
	echo
	echo "CPU during each load (100% = one core, out of $(nproc)); $IDLE_CHECK:"
	echo
	for n in bare_single daemon_single bare_batch daemon_batch copy; do echo "- $n: ${CPU[$n]}"; done
	echo
	echo "Server threads (% of one core; the HTTP thread pool has 2 threads):"
	echo
	for n in bare_single daemon_single bare_batch daemon_batch; do echo "- $n: ${THREADS[$n]}"; done
	echo
	echo "PostgreSQL activity during each writing load (commits include the run's own few queries):"
	echo
	for n in daemon_single daemon_batch copy; do echo "- $n: ${PGACT[$n]}"; done
	echo
	echo "Checks:"
	echo
	echo "- daemon_single: ${CHECK[daemon_single]}"
	echo "- daemon_batch: ${CHECK[daemon_batch]}"
	echo "- events in the daemon's database at the end (with warm-ups): $EVENTS_TOTAL rows, $DAEMON_TABLE"
	echo "- bare server peak RSS: $(calc "$BARE_HWM_KB / 1024" 1) MB"
	echo "- daemon log lines (warn and above): $(wc -l <"$WORK/daemon.log")"
	if [ ${#ANOMALIES[@]} -gt 0 ]; then
		echo
		echo "**The daemon misbehaved:**"
		echo
		printf -- '- %s\n' "${ANOMALIES[@]}"
	fi
} >"$BUILD/result.md"

echo
cat "$BUILD/result.md"
if [ ${#ANOMALIES[@]} -gt 0 ]; then
	echo
	echo "!! ANOMALIES: see above; daemon log: build/bench/logs/daemon.log (last lines below)"
	tail -20 "$WORK/daemon.log"
	exit 1
fi
[ -z "$MISSED" ] || exit 3
exit 0
}
