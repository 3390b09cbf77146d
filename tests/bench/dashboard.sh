#!/usr/bin/env bash
# tests/bench/dashboard.sh - a full load of the built-in dashboard on the
# synthetic shop of queries.sh (PEOPLE people over DAYS days), in Debian's
# chromium, before and after the query index: the same daemon with its
# index loaded, then with query_index false (PostgreSQL answers every
# panel). Each panel whose numbers come from the query API is opened on a
# new page and timed from the sign-in to its answer drawn
# (dashboard_load.py: the median of RUNS after a warm-up); the sum is one
# full load. The figures go to build/bench/dashboard.md.
#
# Usage (as root on Debian 12; installs what is missing):
#   tests/bench/dashboard.sh
# Environment: PEOPLE=500000 DAYS=30 RUNS=3 INDEX_WAIT=600
#   KEEP_DATA=DIR  the cluster of queries.sh's KEEP_DATA, reused
# Exit status: 0 when both loads completed, 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build/bench
PEOPLE=${PEOPLE:-500000}
DAYS=${DAYS:-30}
RUNS=${RUNS:-3}
INDEX_WAIT=${INDEX_WAIT:-600}
READ_KEY=rk_bench_read_0123456789abcdef

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'dashboard.sh: %s\n' "$*" >&2; exit 1; }

# shellcheck source=tests/lib/pg.sh
. "$ROOT/tests/lib/pg.sh"
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"
mapfile -t PKGS < <(mp_build_packages)
mp_install_packages "${PKGS[@]}" curl chromium
command -v npm >/dev/null 2>&1 || mp_install_packages nodejs npm
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] ||
	(cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund >/dev/null)
PG_BINDIR=$(mp_pg_bindir)

bench_lock
bench_release
bench_workdir mpd
DAEMON_PID='' PG_STARTED=''
# shellcheck disable=SC2317 # (called by the trap)
cleanup() {
	set +e
	if [ -n "$DAEMON_PID" ]; then kill "$DAEMON_PID" 2>/dev/null; wait "$DAEMON_PID" 2>/dev/null; fi
	[ -n "$PG_STARTED" ] && mp_pg_stop "$PGDATA"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bench_shop_start
EVENTS=$(sql -d mp_queries -c "SELECT count(*) FROM events WHERE site_id = 'bench'")
log "$EVENTS events"

# timed LABEL: one full load on the daemon running now, into $WORK/LABEL.txt.
timed() {
	log "dashboard, $1"
	python3 "$ROOT/tests/bench/dashboard_load.py" "http://127.0.0.1:$PORT" bench "$READ_KEY" "$RUNS" |
		tee "$WORK/$1.txt" >&2 || die "the $1 load failed"
}

bench_shop_daemon read "$READ_KEY"
# index_ready: whether the daemon's /metrics says its index answers.
index_ready() {
	curl -s -o "$WORK/metrics.txt" "http://127.0.0.1:$PORT/metrics" &&
		grep -q '^milepost_query_index_state 1' "$WORK/metrics.txt"
}
for _ in $(seq $((INDEX_WAIT * 2))); do
	index_ready && break
	sleep 0.5
done
index_ready || die "the query index did not load within $INDEX_WAIT s"
timed index
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=''
MILEPOST_QUERY_INDEX=false "$MILEPOST" serve --config "$WORK/config.json" >>"$WORK/daemon.log" 2>&1 &
DAEMON_PID=$!
bench_wait_ready
timed sql

ms() { awk -v p="$1" '$1 == p { print $2 }' "$WORK/$2.txt"; }
{
	echo "## Dashboard, $(date -u +%Y-%m-%d), commit $COMMIT"
	echo
	echo "$EVENTS events, $PEOPLE people, $DAYS days; each panel opened on a new page and timed from the sign-in to its answer drawn, the median of $RUNS after a warm-up (Debian's chromium, headless)."
	echo
	echo "| panel | query_index false (PostgreSQL) ms | query index ms | × |"
	echo "|---|---|---|---|"
	for p in funnel attribution targets signals total; do
		s=$(ms "$p" sql) x=$(ms "$p" index)
		echo "| $p | $s | $x | $(awk -v s="$s" -v x="$x" 'BEGIN { printf "%.3f", x / s }') |"
	done
} | tee "$BUILD/dashboard.md"
