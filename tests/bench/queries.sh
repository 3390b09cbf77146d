#!/usr/bin/env bash
# tests/bench/queries.sh - the query API on a synthetic shop (see
# docs/performance.md, "Query API"), on both engines: PostgreSQL (engine=sql)
# and the daemon's in-memory query index (engine=index).
#
# One run: a private PostgreSQL cluster, a database migrated by the binary,
# the data of queries_data.sql (PEOPLE people over DAYS days: about 5.8
# million events with the defaults), the daemon with the example plan. Once
# its query index is loaded (milepost_query_index_state 1 in /metrics, up to
# INDEX_WAIT seconds; the load time and the index's own memory accounting
# come from /metrics too), each endpoint is asked RUNS times after one
# warm-up with engine=sql, then RUNS times after one warm-up with
# engine=index, timed with curl; the medians are compared with the issue's
# targets. As a baseline measured in the same run, psql times a plain count
# of the same range's events (one scan): the ratios say how far each
# endpoint is from reading the range once, and the index's targets are such
# ratios. An endpoint that does not take engine yet (400 unknown_parameter)
# is timed without it for the sql column (PostgreSQL answers it anyway) and
# is n/a in the index column; so is one answered 409 (engine_unavailable).
# The catch-up cost per query comes from the index's counters in /metrics
# before and after the index timings.
#
# With CONCURRENT=1, the single-event load of ingest.sh (wrk with events.lua,
# 64 connections) runs twice for LOAD_SECONDS against the same daemon:
# alone, then while the 4-step funnel is asked with engine=index back to back
# (at least RUNS times): the funnel's median under load and ingest's
# requests/s with and without the funnel. The load adds its events to the
# site bench (ts now, today): a KEEP_DATA cluster keeps them.
#
# Then each endpoint once more with auto_explain on (the plans, with actual
# rows and no timing, of statements over a second) into
# build/bench/queries-plans.txt, from a second daemon started with the query
# index off (MILEPOST_QUERY_INDEX=false, engine=sql): its resident memory
# once ready, against the first daemon's once its index was ready, gives the
# index's resident bytes per event. The figures go to build/bench/queries.md.
#
# Usage (as root on Debian 12; installs what is missing with apt-get):
#   tests/bench/queries.sh
# Environment:
#   PEOPLE=500000  DAYS=30  RUNS=5
#   INDEX_WAIT=600     seconds to wait for the query index to load
#   CONCURRENT=1       the funnel under ingest load (0: skip; needs wrk)
#   LOAD_SECONDS=10    seconds of each of the two ingest loads
#   KEEP_DATA=DIR  keep the cluster in DIR and reuse it on the next run with
#                  the same DIR (generation takes minutes)
#   SQL_TIMINGS=0  skip the engine=sql timings and the plans pass (for the
#                  PEOPLE=2000000 run, whose statements pass the daemon's
#                  30 s limit); the second daemon still gives the resident
#                  memory without the index
# Exit status: 0 when the run completed (whatever the figures), 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build/bench
PEOPLE=${PEOPLE:-500000}
DAYS=${DAYS:-30}
RUNS=${RUNS:-5}
INDEX_WAIT=${INDEX_WAIT:-600}
CONCURRENT=${CONCURRENT:-1}
LOAD_SECONDS=${LOAD_SECONDS:-10}
SQL_TIMINGS=${SQL_TIMINGS:-1}
READ_KEY=rk_bench_read_0123456789abcdef
LOAD_CONNS=64          # as ingest.sh's single-event loads
LOAD_THREADS=2

# Targets (ms) of the sql engine, on the 2-core machine of docs/performance.md.
T_FUNNEL=300
T_BREAKDOWN=600
T_MILESTONES=200
T_SIGNALS=1000
T_ATTRIBUTION=1000     # issue 7: all models at once
T_DATA_DRIVEN=2000     # issue 7: data_driven alone
# Targets of the index engine: its median over the count(*) baseline's.
X_FUNNEL=0.05
X_BREAKDOWN=0.08
X_MILESTONES=0.08
X_SIGNALS=0.15
X_ATTRIBUTION=0.25     # all seven models
T_BYTES_PER_EVENT=24   # the index's memory per event

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'queries.sh: %s\n' "$*" >&2; exit 1; }

# shellcheck source=tests/lib/pg.sh
. "$ROOT/tests/lib/pg.sh"
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"     # bench_build, bench_shop_*
mapfile -t PKGS < <(mp_build_packages)
mp_install_packages "${PKGS[@]}" curl
if [ "$CONCURRENT" = 1 ]; then
	mp_install_packages wrk || log "wrk could not be installed: the concurrency section will be skipped"
fi
PG_BINDIR=$(mp_pg_bindir)

bench_lock
bench_release
bench_workdir mpq
DAEMON_PID='' PG_STARTED='' WRK_PID=''

# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
	set +e
	if [ -n "$WRK_PID" ]; then kill "$WRK_PID" 2>/dev/null; wait "$WRK_PID" 2>/dev/null; fi
	if [ -n "$DAEMON_PID" ]; then kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; fi
	[ -n "$PG_STARTED" ] && mp_pg_stop "$PGDATA"
	mkdir -p "$BUILD/logs" && cp "$WORK"/*.log "$BUILD/logs/" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_shop_start
EVENTS=$(sql -d mp_queries -c "SELECT count(*) FROM events WHERE site_id = 'bench'")
log "$EVENTS events"

# ------------------------------------------------------------ helpers
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }   # EXPR [DECIMALS]
is_num() { [[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]]; }
rss_kb() { awk -v k="${2:-VmRSS}:" '$1 == k { print $2 }' "/proc/$1/status"; }   # PID [FIELD]

# metrics FILE: the daemon's /metrics into FILE (empty when unanswered).
metrics() { curl -s "http://127.0.0.1:$PORT/metrics" >"$1" || : >"$1"; }
# metric FILE NAME: its value, or n/a when /metrics has no such line.
metric() { awk -v n="$2" '$1 == n { v = $2 } END { print (v == "") ? "n/a" : v }' "$1"; }
# delta A B: B - A, or n/a.
delta() {
	if is_num "$1" && is_num "$2"; then
		awk -v a="$1" -v b="$2" 'BEGIN { d = b - a; if (d == int(d)) printf "%d\n", d; else printf "%.6f\n", d }'
	else
		echo n/a
	fi
}

# answer_get KEY.KEY...: a field of $WORK/answer.json, empty when absent.
answer_get() {
	python3 - "$WORK/answer.json" "$1" <<'PY'
import json, sys
try:
    v = json.load(open(sys.argv[1]))
except Exception:
    v = None
for k in sys.argv[2].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)
PY
}

# ask PATH: one call; sets CODE and MS (time_total in ms).
ask() {
	local t
	read -r CODE t < <(curl -s -o "$WORK/answer.json" -w '%{http_code} %{time_total}\n' \
		-H "Authorization: Bearer $READ_KEY" "http://127.0.0.1:$PORT$1")
	MS=$(calc "$t * 1000" 2)
}

# with_engine PATH ENGINE: PATH with &engine=ENGINE (as it is for "").
with_engine() { if [ -n "$2" ]; then echo "$1&engine=$2"; else echo "$1"; fi; }

# time_endpoint PATH ENGINE: the median milliseconds of RUNS calls with
# engine=ENGINE ("": without the parameter) after a warm-up; "noengine" when
# the warm-up is answered 400 unknown_parameter (the endpoint takes no engine
# yet), "n/a" when a call is answered 409 (the engine cannot answer), else
# "failed" when a call is not answered 200 (a statement over the daemon's
# 30 s limit, for instance) or another engine than asked answered; the
# answer is logged.
time_endpoint() {
	local path i times=() got
	path=$(with_engine "$1" "$2")
	for i in $(seq 0 "$RUNS"); do
		ask "$path"
		if [ "$CODE" != 200 ]; then
			if [ "$i" = 0 ] && [ "$CODE" = 400 ] && [ -n "$2" ] &&
				[ "$(answer_get error.code)" = unknown_parameter ]; then
				echo noengine
				return
			fi
			log "$path answered $CODE: $(cat "$WORK/answer.json")"
			if [ "$CODE" = 409 ]; then echo n/a; else echo failed; fi
			return
		fi
		if [ "$i" = 0 ] && [ -n "$2" ]; then
			got=$(answer_get engine)
			if [ "$got" != "$2" ]; then
				log "$path answered with engine \"$got\""
				echo failed
				return
			fi
		fi
		[ "$i" -gt 0 ] && times+=("$MS")
	done
	calc "$(printf '%s\n' "${times[@]}" | bench_median)" 2
}

# --------------------------------------------------- the daemon, its index
Q="site=bench&from=$FROM&to=$TO"
STEPS=product_viewed,cart_added,checkout_started,purchase_completed
FUNNEL="/api/v1/funnel?$Q&steps=$STEPS&window=7d"
RULES=first_touch,last_touch,last_non_direct,linear,time_decay,position_based
# name|path|sql target ms|index target (x baseline, - for none): each timed
# on both engines, then asked again for its plans.
ENDPOINTS=(
	"funnel, 4 steps|$FUNNEL|$T_FUNNEL|$X_FUNNEL"
	"funnel, 4 steps, breakdown=channel|$FUNNEL&breakdown=channel|$T_BREAKDOWN|$X_BREAKDOWN"
	"milestones, by day|/api/v1/milestones?$Q&interval=day|$T_MILESTONES|$X_MILESTONES"
	"signals|/api/v1/signals?$Q&window=7d|$T_SIGNALS|$X_SIGNALS"
	"attribution, all seven models|/api/v1/attribution?$Q&models=all|$T_ATTRIBUTION|$X_ATTRIBUTION"
	"attribution, the six rule-based models|/api/v1/attribution?$Q&models=$RULES|$T_ATTRIBUTION|-"
	"attribution, data_driven alone|/api/v1/attribution?$Q&models=data_driven|$T_DATA_DRIVEN|-"
)

START_NS=$(date +%s%N)
bench_shop_daemon read "$READ_KEY"

# wait_index: until the query index answers, is off, or INDEX_WAIT seconds
# passed. Sets INDEX_STATE (ready, off, loading) and WAITED_S (seconds from
# the daemon's start). Reads milepost_query_index_state; when /metrics has
# no such line, asks the 4-step funnel with engine=index instead (409 with
# "loading": still loading) and sets METRICS_MISSING.
METRICS_MISSING=''
wait_index() {
	local state
	log "waiting for the query index (up to $INDEX_WAIT s)"
	while :; do
		kill -0 "$DAEMON_PID" 2>/dev/null || { tail -20 "$WORK/daemon.log" >&2; die "the daemon died"; }
		metrics "$WORK/metrics-wait.txt"
		state=$(metric "$WORK/metrics-wait.txt" milepost_query_index_state)
		if [ "$state" = n/a ]; then
			METRICS_MISSING=1
			ask "$(with_engine "$FUNNEL" index)"
			case "$CODE" in
			200) state=1 ;;
			409) if grep -q loading "$WORK/answer.json"; then state=2; else state=0; fi ;;
			*) state=0 ;;
			esac
		fi
		WAITED_S=$(calc "($(date +%s%N) - $START_NS) / 1e9" 1)
		case "$state" in
		1) INDEX_STATE=ready; return ;;
		2) ;;
		*) INDEX_STATE=off; log "the query index is off: $(cat "$WORK/answer.json" 2>/dev/null)"; return ;;
		esac
		if [ "${WAITED_S%.*}" -ge "$INDEX_WAIT" ]; then INDEX_STATE=loading; return; fi
		sleep 0.5
	done
}
wait_index
log "query index: $INDEX_STATE after $WAITED_S s"
RSS_ON_KB=$(rss_kb "$DAEMON_PID")   # once the index is ready, before any timed query
metrics "$WORK/metrics-ready.txt"
IX_EVENTS=$(metric "$WORK/metrics-ready.txt" milepost_query_index_events)
IX_BYTES=$(metric "$WORK/metrics-ready.txt" milepost_query_index_bytes)
IX_PEOPLE=$(metric "$WORK/metrics-ready.txt" milepost_query_index_people)
IX_VISITS=$(metric "$WORK/metrics-ready.txt" milepost_query_index_visits)
LOAD_S=$(metric "$WORK/metrics-ready.txt" milepost_query_index_load_seconds)
LOAD_FROM=metrics
if ! is_num "$LOAD_S" && [ "$INDEX_STATE" = ready ]; then
	LOAD_S=$WAITED_S LOAD_FROM=polled   # from the daemon's start, to within 0.5 s
fi
[ -n "$METRICS_MISSING" ] && log "WARNING: /metrics has no milepost_query_index_* lines"

# ------------------------------------------------------------ the timings
# The baseline: one plain scan of the range's events.
BASE=$(bench_sql_ms "SELECT count(*) FROM events WHERE site_id = 'bench' AND ts >= '$FROM' AND ts < '$TO'::date + 1")
SQL_TIMES=() SQL_NOTES=()
[ "$SQL_TIMINGS" = 1 ] && log "timing, engine=sql (median of $RUNS after a warm-up)"
for e in "${ENDPOINTS[@]}"; do
	IFS='|' read -r _ path _ _ <<<"$e"
	t=skipped note=''
	if [ "$SQL_TIMINGS" = 1 ]; then
		t=$(time_endpoint "$path" sql)
		if [ "$t" = noengine ]; then   # PostgreSQL answers it anyway
			t=$(time_endpoint "$path" '') note=1
		fi
	fi
	SQL_TIMES+=("$t") SQL_NOTES+=("$note")
done

IX_TIMES=()
metrics "$WORK/metrics-before.txt"
if [ "$INDEX_STATE" = ready ]; then
	log "timing, engine=index (median of $RUNS after a warm-up)"
	for e in "${ENDPOINTS[@]}"; do
		IFS='|' read -r _ path _ _ <<<"$e"
		t=$(time_endpoint "$path" index)
		[ "$t" = noengine ] && t='n/a (400)'
		[ "$t" = n/a ] && t='n/a (409)'
		IX_TIMES+=("$t")
	done
else
	for e in "${ENDPOINTS[@]}"; do IX_TIMES+=("n/a (index $INDEX_STATE)"); done
fi
metrics "$WORK/metrics-after.txt"
CATCHUPS=$(delta "$(metric "$WORK/metrics-before.txt" milepost_query_index_catchups_total)" \
	"$(metric "$WORK/metrics-after.txt" milepost_query_index_catchups_total)")
CATCHUP_S=$(delta "$(metric "$WORK/metrics-before.txt" milepost_query_index_catchup_seconds_total)" \
	"$(metric "$WORK/metrics-after.txt" milepost_query_index_catchup_seconds_total)")
IX_ANSWERS=$(delta "$(metric "$WORK/metrics-before.txt" 'milepost_query_answers_total{engine="index"}')" \
	"$(metric "$WORK/metrics-after.txt" 'milepost_query_answers_total{engine="index"}')")
CATCHUP_MS=n/a
if is_num "$CATCHUPS" && awk -v n="$CATCHUPS" 'BEGIN { exit !(n > 0) }'; then
	CATCHUP_MS=$(calc "$CATCHUP_S * 1000 / $CATCHUPS" 3)
fi
CONVERSIONS=$(curl -s -H "Authorization: Bearer $READ_KEY" \
	"http://127.0.0.1:$PORT/api/v1/attribution?$Q&models=first_touch" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["conversions"])')

# ------------------------------------------- the funnel under ingest load
# field RESULT KEY: a value of events.lua's RESULT line.
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<" $1"; }
# load NAME SECONDS: ingest.sh's single-event load on the daemon, in the
# background (WRK_PID), its output in $WORK/wrk-NAME.log.
load() {
	wrk -t"$LOAD_THREADS" -c"$LOAD_CONNS" -d"$2s" --timeout 10s --latency \
		-s "$ROOT/tests/bench/events.lua" "http://127.0.0.1:$PORT/v1/events" >"$WORK/wrk-$1.log" 2>&1 &
	WRK_PID=$!
}
# load_result NAME: waits for the load (not in a subshell: wrk is this
# shell's child); sets RESULT to its RESULT line.
load_result() {
	wait "$WRK_PID" || true
	WRK_PID=''
	RESULT=$(grep '^RESULT ' "$WORK/wrk-$1.log") || { cat "$WORK/wrk-$1.log" >&2; die "wrk gave no result for $1"; }
}
CONC_NOTE=''
if [ "$CONCURRENT" != 1 ]; then
	CONC_NOTE="skipped (CONCURRENT=$CONCURRENT)"
elif ! command -v wrk >/dev/null; then
	CONC_NOTE="skipped: wrk (ingest.sh's load generator) is not installed"
elif ! is_num "${IX_TIMES[0]}"; then
	CONC_NOTE="skipped: the 4-step funnel has no index time (${IX_TIMES[0]})"
else
	log "ingest load alone, ${LOAD_SECONDS}s (after a 2 s warm-up)"
	load warmup 2; load_result warmup
	load alone "$LOAD_SECONDS"; load_result alone; R_ALONE=$RESULT
	log "alone: $R_ALONE"
	log "ingest load, ${LOAD_SECONDS}s, with the 4-step funnel (engine=index) back to back"
	metrics "$WORK/metrics-load0.txt"
	load funnel "$LOAD_SECONDS"
	sleep 1   # wrk connected and sending
	LOADED=() LOAD_FAILED=0
	while [ "${#LOADED[@]}" -lt "$RUNS" ] || kill -0 "$WRK_PID" 2>/dev/null; do
		ask "$(with_engine "$FUNNEL" index)"
		if [ "$CODE" = 200 ]; then
			LOADED+=("$MS")
		else
			LOAD_FAILED=$((LOAD_FAILED + 1))
			log "funnel under load answered $CODE: $(cat "$WORK/answer.json")"
			[ "$LOAD_FAILED" -lt 5 ] || break
		fi
	done
	load_result funnel; R_FUNNEL=$RESULT
	metrics "$WORK/metrics-load1.txt"
	log "with the funnel: $R_FUNNEL"
	if [ "${#LOADED[@]}" -gt 0 ]; then
		LOADED_MEDIAN=$(calc "$(printf '%s\n' "${LOADED[@]}" | bench_median)" 2)
		LOADED_MAX=$(printf '%s\n' "${LOADED[@]}" | sort -n | tail -1)
	else
		LOADED_MEDIAN=failed LOADED_MAX=-
	fi
	LOAD_CATCHUPS=$(delta "$(metric "$WORK/metrics-load0.txt" milepost_query_index_catchups_total)" \
		"$(metric "$WORK/metrics-load1.txt" milepost_query_index_catchups_total)")
	LOAD_CATCHUP_S=$(delta "$(metric "$WORK/metrics-load0.txt" milepost_query_index_catchup_seconds_total)" \
		"$(metric "$WORK/metrics-load1.txt" milepost_query_index_catchup_seconds_total)")
	LOAD_CATCHUP_ROWS=$(delta "$(metric "$WORK/metrics-load0.txt" milepost_query_index_catchup_rows_total)" \
		"$(metric "$WORK/metrics-load1.txt" milepost_query_index_catchup_rows_total)")
	LOAD_CATCHUP_MS=n/a
	if is_num "$LOAD_CATCHUPS" && awk -v n="$LOAD_CATCHUPS" 'BEGIN { exit !(n > 0) }'; then
		LOAD_CATCHUP_MS=$(calc "$LOAD_CATCHUP_S * 1000 / $LOAD_CATCHUPS" 3)
	fi
fi
kill -0 "$DAEMON_PID" 2>/dev/null || { tail -20 "$WORK/daemon.log" >&2; die "the daemon died"; }
HWM_ON_KB=$(rss_kb "$DAEMON_PID" VmHWM)

# The plans, from a second daemon with the query index off (its answers are
# PostgreSQL's anyway) whose connections log every statement's plan with its
# actual rows (auto_explain, no timing: the figures above were taken without
# it); its resident memory once ready is the one without the index.
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=''
sql -d postgres -c "ALTER DATABASE mp_queries SET session_preload_libraries = 'auto_explain'" \
	-c "ALTER DATABASE mp_queries SET auto_explain.log_min_duration = 1000" \
	-c "ALTER DATABASE mp_queries SET auto_explain.log_analyze = on" \
	-c "ALTER DATABASE mp_queries SET auto_explain.log_timing = off"
LOGFILE=$(mp_pg_logfile "$PGDATA")
MARK=$(wc -l <"$LOGFILE")
MILEPOST_QUERY_INDEX=false "$MILEPOST" serve --config "$WORK/config.json" >>"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
bench_wait_ready
sleep 2   # settled, as the first daemon was once its index was loaded
RSS_OFF_KB=$(rss_kb "$DAEMON_PID")
metrics "$WORK/metrics-off.txt"
OFF_STATE=$(metric "$WORK/metrics-off.txt" milepost_query_index_state)
for e in "${ENDPOINTS[@]}"; do
	[ "$SQL_TIMINGS" = 1 ] || break
	IFS='|' read -r _ path _ _ <<<"$e"
	ask "$(with_engine "$path" sql)"
	[ "$CODE" = 400 ] && [ "$(answer_get error.code)" = unknown_parameter ] && ask "$path"
	[ "$CODE" = 200 ] || log "plans: $path answered $CODE"
done
HWM_OFF_KB=$(rss_kb "$DAEMON_PID" VmHWM)
sql -d postgres -c "ALTER DATABASE mp_queries RESET ALL"
tail -n +"$MARK" "$LOGFILE" | grep -vE 'STATEMENT|^\s*$' | cut -c1-220 >"$BUILD/queries-plans.txt" || true

# ------------------------------------------------------------- the figures
num_or() { if is_num "$1"; then echo "$1"; else echo "${2:-n/a}"; fi; }
# ratio MS [DECIMALS]: MS over the baseline.
ratio() { if is_num "$1"; then calc "$1 / $BASE" "${2:-2}"; else echo -; fi; }
# verdict VALUE TARGET: PASS when VALUE <= TARGET; - without a target.
verdict() {
	[ "$2" = - ] && { echo -; return; }
	is_num "$1" || { case "$1" in failed) echo MISS ;; *) echo n/a ;; esac; return; }
	awk -v v="$1" -v t="$2" 'BEGIN { print (v <= t) ? "PASS" : "MISS" }'
}
PER_EVENTS=$IX_EVENTS; is_num "$PER_EVENTS" && [ "$PER_EVENTS" != 0 ] || PER_EVENTS=$EVENTS
IX_BPE=n/a RSS_BPE=n/a LOAD_PER_M=n/a
if is_num "$IX_BYTES" && is_num "$IX_EVENTS" && [ "$IX_EVENTS" != 0 ]; then IX_BPE=$(calc "$IX_BYTES / $IX_EVENTS" 1); fi
if [ "$INDEX_STATE" = ready ] && is_num "$RSS_ON_KB" && is_num "$RSS_OFF_KB"; then
	RSS_BPE=$(calc "($RSS_ON_KB - $RSS_OFF_KB) * 1024 / $PER_EVENTS" 1)
fi
if is_num "$LOAD_S"; then LOAD_PER_M=$(calc "$LOAD_S / ($PER_EVENTS / 1e6)" 2); fi
mb() { if is_num "$1"; then calc "$1 / 1024" 1; else echo n/a; fi; }   # KB
{
	echo "## Query API, $(date -u +%Y-%m-%d), commit $COMMIT"
	echo
	echo "$EVENTS events, $PEOPLE people, $DAYS days; median of $RUNS calls after a warm-up, on each engine."
	echo "Baseline: one \`count(*)\` over the range's events: $BASE ms."
	echo "Query index: $INDEX_STATE after $WAITED_S s from the daemon's start."
	if [ -n "$METRICS_MISSING" ]; then
		echo
		echo "**/metrics has no \`milepost_query_index_*\` lines: index readiness was polled with engine=index, the load time is the polled one (from the daemon's start, to within 0.5 s), and the index's own figures are n/a.**"
	fi
	echo
	echo "| endpoint | sql ms | × baseline | index ms | × baseline | index target × | PASS/MISS |"
	echo "|---|---|---|---|---|---|---|"
	for i in "${!ENDPOINTS[@]}"; do
		IFS='|' read -r name _ _ xt <<<"${ENDPOINTS[$i]}"
		s=${SQL_TIMES[$i]} x=${IX_TIMES[$i]}
		mark=''; [ -n "${SQL_NOTES[$i]}" ] && mark=' ¹'
		xv=$x; is_num "$x" && xv=$(ratio "$x" 6)   # the verdict on the unrounded ratio
		echo "| $name | $s$mark | $(ratio "$s") | $x | $(ratio "$x" 3) | $xt | $(verdict "$xv" "$xt") |"
	done
	echo
	echo "¹ the endpoint takes no \`engine\` parameter yet (400 unknown_parameter): timed without it (PostgreSQL answers). n/a (400): engine=index not accepted; n/a (409): engine_unavailable."
	echo
	echo "SQL engine against its absolute targets:"
	echo
	echo "| endpoint | sql ms | target ms | |"
	echo "|---|---|---|---|"
	for i in "${!ENDPOINTS[@]}"; do
		IFS='|' read -r name _ target _ <<<"${ENDPOINTS[$i]}"
		echo "| $name | ${SQL_TIMES[$i]} | $target | $(verdict "${SQL_TIMES[$i]}" "$target") |"
	done
	echo
	echo "Query index: $(num_or "$IX_EVENTS") events, $(num_or "$IX_PEOPLE") people, $(num_or "$IX_VISITS") visits, $(num_or "$IX_BYTES") bytes; loaded in $(num_or "$LOAD_S") s ($LOAD_FROM), $LOAD_PER_M s per million events."
	echo "Memory, target ≤ $T_BYTES_PER_EVENT bytes/event: index accounting $IX_BPE bytes/event ($(verdict "$IX_BPE" "$T_BYTES_PER_EVENT")); resident $RSS_BPE bytes/event ($(verdict "$RSS_BPE" "$T_BYTES_PER_EVENT")): VmRSS $(mb "$RSS_ON_KB") MB with the index once ready, $(mb "$RSS_OFF_KB") MB for a daemon with query_index false once ready (its state metric: $OFF_STATE); peak VmHWM $(mb "$HWM_ON_KB") MB with the index (after all its queries), $(mb "$HWM_OFF_KB") MB without (after the plans pass)."
	echo "Catch-up during the index timings: $CATCHUPS catch-ups (the 1 s ticker's included) for $IX_ANSWERS index answers, $CATCHUP_S s: $CATCHUP_MS ms per catch-up."
	echo
	if [ -n "$CONC_NOTE" ]; then
		echo "Concurrency: $CONC_NOTE."
	else
		echo "Concurrency: ingest.sh's single-event load (wrk, events.lua, $LOAD_CONNS connections, ${LOAD_SECONDS}s each) on the same daemon, into the site bench:"
		echo
		echo "| load | ingest req/s | p99 ms | status ≥ 400 + errors | funnel (index) median ms | funnel max ms | funnel calls |"
		echo "|---|---|---|---|---|---|---|"
		echo "| ingest alone | $(field "$R_ALONE" rps) | $(field "$R_ALONE" p99_ms) | $(( $(field "$R_ALONE" non2xx) + $(field "$R_ALONE" sockerr) + $(field "$R_ALONE" timeouts) )) | ${IX_TIMES[0]} (idle) | | |"
		echo "| ingest + funnel back to back | $(field "$R_FUNNEL" rps) | $(field "$R_FUNNEL" p99_ms) | $(( $(field "$R_FUNNEL" non2xx) + $(field "$R_FUNNEL" sockerr) + $(field "$R_FUNNEL" timeouts) )) | $LOADED_MEDIAN | $LOADED_MAX | ${#LOADED[@]} (+ $LOAD_FAILED not 200) |"
		echo
		echo "Ingest with the funnel: $(calc "$(field "$R_FUNNEL" rps) / $(field "$R_ALONE" rps) * 100" 1)% of its requests/s alone. Catch-ups under load: $LOAD_CATCHUPS, $LOAD_CATCHUP_ROWS rows, $LOAD_CATCHUP_MS ms per catch-up."
	fi
	echo
	echo "Summary: PEOPLE $PEOPLE, events $EVENTS, index events $(num_or "$IX_EVENTS"), bytes/event (index accounting) $IX_BPE, RSS bytes/event $RSS_BPE, load $(num_or "$LOAD_S") s, load $LOAD_PER_M s per million events, catch-up $CATCHUP_MS ms per query (the mean catch-up during the index timings)."
	echo
	echo "Attribution: $CONVERSIONS conversions."
} | tee "$BUILD/queries.md"

log "figures in build/bench/queries.md, plans in build/bench/queries-plans.txt"
