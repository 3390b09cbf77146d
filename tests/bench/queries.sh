#!/usr/bin/env bash
# tests/bench/queries.sh - the query API on a synthetic shop (see
# docs/performance.md, "Query API").
#
# One run: a private PostgreSQL cluster, a database migrated by the binary,
# the data of queries_data.sql (PEOPLE people over DAYS days: about 5.8
# million events with the defaults), the daemon with the example plan, then
# each endpoint asked RUNS times after one warm-up, timed with curl; the
# median is compared with the issue's targets. As a baseline measured in the
# same run, psql times a plain count of the same range's events (one scan):
# the ratios say how far each endpoint is from reading the range once.
# Then each endpoint once more with auto_explain on (the plans, with actual
# rows and no timing, of statements over a second) into
# build/bench/queries-plans.txt; the figures go to
# build/bench/queries.md.
#
# Usage (as root on Debian 12; installs what is missing with apt-get):
#   tests/bench/queries.sh
# Environment:
#   PEOPLE=500000  DAYS=30  RUNS=5
#   KEEP_DATA=DIR  keep the cluster in DIR and reuse it on the next run with
#                  the same DIR (generation takes minutes)
# Exit status: 0 when the run completed (whatever the figures), 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build/bench
PEOPLE=${PEOPLE:-500000}
DAYS=${DAYS:-30}
RUNS=${RUNS:-5}
READ_KEY=rk_bench_read_0123456789abcdef

# Targets (ms), on the 2-core machine of docs/performance.md.
T_FUNNEL=300
T_BREAKDOWN=600
T_MILESTONES=200
T_SIGNALS=1000
T_ATTRIBUTION=1000     # issue 7: all models at once
T_DATA_DRIVEN=2000     # issue 7: data_driven alone

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'queries.sh: %s\n' "$*" >&2; exit 1; }

# shellcheck source=tests/lib/pg.sh
. "$ROOT/tests/lib/pg.sh"
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"     # bench_build, bench_shop_*
mapfile -t PKGS < <(mp_build_packages)
mp_install_packages "${PKGS[@]}" curl
PG_BINDIR=$(mp_pg_bindir)

mkdir -p "$ROOT/build"
exec 9>"$ROOT/build/.bench.lock"
flock 9

log "building release into build/bench"
bench_build "$ROOT" "$BUILD"
MILEPOST=$BUILD/server/milepost
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"

WORK=$(mktemp -d /tmp/mpq.XXXXXX)   # config, logs; the cluster unless KEEP_DATA
chmod 755 "$WORK"
PGDATA=${KEEP_DATA:-$WORK/pg}
DAEMON_PID='' PG_STARTED=''

cleanup() {
	set +e
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

bench_shop_daemon read "$READ_KEY"

# time_endpoint PATH: median milliseconds of RUNS calls after a warm-up, or
# "failed" when a call is not answered 200 (a statement over the daemon's
# 30 s limit, for instance; the answer is logged).
time_endpoint() {
	local url="http://127.0.0.1:$PORT$1" i code t times=()
	for i in $(seq 0 "$RUNS"); do
		read -r code t < <(curl -s -o "$WORK/answer.json" -w '%{http_code} %{time_total}\n' \
			-H "Authorization: Bearer $READ_KEY" "$url")
		if [ "$code" != 200 ]; then
			log "$1 answered $code: $(cat "$WORK/answer.json")"
			echo failed
			return
		fi
		[ "$i" -gt 0 ] && times+=("$(awk -v t="$t" 'BEGIN {printf "%.1f", t * 1000}')")
	done
	printf '%s\n' "${times[@]}" | bench_median
}

Q="site=bench&from=$FROM&to=$TO"
STEPS=product_viewed,cart_added,checkout_started,purchase_completed
log "timing (median of $RUNS after a warm-up)"
# name|path|target ms, each timed, then asked again for its plans.
RULES=first_touch,last_touch,last_non_direct,linear,time_decay,position_based
ENDPOINTS=(
	"funnel, 4 steps|/api/v1/funnel?$Q&steps=$STEPS&window=7d|$T_FUNNEL"
	"funnel, 4 steps, breakdown=channel|/api/v1/funnel?$Q&steps=$STEPS&window=7d&breakdown=channel|$T_BREAKDOWN"
	"milestones, by day|/api/v1/milestones?$Q&interval=day|$T_MILESTONES"
	"signals|/api/v1/signals?$Q&window=7d|$T_SIGNALS"
	"attribution, all seven models|/api/v1/attribution?$Q&models=all|$T_ATTRIBUTION"
	"attribution, the six rule-based models|/api/v1/attribution?$Q&models=$RULES|$T_ATTRIBUTION"
	"attribution, data_driven alone|/api/v1/attribution?$Q&models=data_driven|$T_DATA_DRIVEN"
)
# The baseline: one plain scan of the range's events.
BASE=$(bench_sql_ms "SELECT count(*) FROM events WHERE site_id = 'bench' AND ts >= '$FROM' AND ts < '$TO'::date + 1")
TIMES=()
for e in "${ENDPOINTS[@]}"; do
	IFS='|' read -r _ path _ <<<"$e"
	TIMES+=("$(time_endpoint "$path")")
done
CONVERSIONS=$(curl -s -H "Authorization: Bearer $READ_KEY" \
	"http://127.0.0.1:$PORT/api/v1/attribution?$Q&models=first_touch" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["conversions"])')

# The plans, from a second daemon whose connections log every statement's
# plan with its actual rows (auto_explain, no timing: the figures above were
# taken without it).
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=''
sql -d postgres -c "ALTER DATABASE mp_queries SET session_preload_libraries = 'auto_explain'" \
	-c "ALTER DATABASE mp_queries SET auto_explain.log_min_duration = 1000" \
	-c "ALTER DATABASE mp_queries SET auto_explain.log_analyze = on" \
	-c "ALTER DATABASE mp_queries SET auto_explain.log_timing = off"
LOGFILE=$(mp_pg_logfile "$PGDATA")
MARK=$(wc -l <"$LOGFILE")
"$MILEPOST" serve --config "$WORK/config.json" >>"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
bench_wait_ready
for e in "${ENDPOINTS[@]}"; do
	IFS='|' read -r _ path _ <<<"$e"
	curl -s -H "Authorization: Bearer $READ_KEY" "http://127.0.0.1:$PORT$path" >/dev/null
done
sql -d postgres -c "ALTER DATABASE mp_queries RESET ALL"
tail -n +"$MARK" "$LOGFILE" | grep -vE 'STATEMENT|^\s*$' | cut -c1-220 >"$BUILD/queries-plans.txt" || true

verdict() { [ "$1" = failed ] && { echo MISS; return; }; awk -v v="$1" -v t="$2" 'BEGIN {print (v <= t) ? "PASS" : "MISS"}'; }
ratio() { [ "$1" = failed ] && { echo -; return; }; awk -v v="$1" -v b="$2" 'BEGIN {printf "%.1f", v / b}'; }
{
	echo "## Query API, $(date -u +%Y-%m-%d), commit $COMMIT"
	echo
	echo "$EVENTS events, $PEOPLE people, $DAYS days; median of $RUNS calls after a warm-up."
	echo "Baseline: one \`count(*)\` over the range's events: $BASE ms."
	echo
	echo "| endpoint | ms | target ms | | × baseline |"
	echo "|---|---|---|---|---|"
	for i in "${!ENDPOINTS[@]}"; do
		IFS='|' read -r name _ target <<<"${ENDPOINTS[$i]}"
		t=${TIMES[$i]}
		echo "| $name | $t | $target | $(verdict "$t" "$target") | $(ratio "$t" "$BASE") |"
	done
	echo
	echo "Attribution: $CONVERSIONS conversions."
} | tee "$BUILD/queries.md"

log "figures in build/bench/queries.md, plans in build/bench/queries-plans.txt"
