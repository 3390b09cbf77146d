#!/usr/bin/env bash
# tests/bench/ab.sh - this tree's daemon against an earlier revision's, in one
# run (see docs/performance.md, "Against an earlier revision").
#
# Both daemons run on one private PostgreSQL cluster, each on its own database
# migrated by its own binary, under the loads of ingest.sh (events.lua from this
# tree for both): single events over 64 connections, batches of 100 over 16.
# The loads alternate A/B, B/A, A/B... for ROUNDS rounds, so that a machine
# that slows down or speeds up during the run hits both sides alike, and the
# figure is the median over the rounds of this/baseline. That is the check of
# a target such as "within 20% of the figure before this change".
#
# Usage (as root on Debian 12; installs what is missing with apt-get):
#   tests/bench/ab.sh REVISION      e.g. tests/bench/ab.sh abcf884
# Environment:
#   ROUNDS=4      rounds of each load
#   DURATION=10   seconds of each measured load
#   WARMUP=2      seconds of unmeasured load before each
#   NO_CHECKPOINT=1  no CHECKPOINT before each load (ingest.sh takes one)
#   THIS_ENV="MILEPOST_X=y ..."  more configuration for this tree's daemon
# The summary is printed and written to build/bench/ab.md. Exit status: 0 when
# the run completed, 1 when it failed or a daemon answered with an error.
set -euo pipefail
{ # The whole script is read before it runs, so that editing it cannot upset a run.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
REV=${1:?usage: tests/bench/ab.sh REVISION}
ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
BUILD=$ROOT/build/bench
SITES='[{"id":"bench","name":"Bench","write_key":"wk_bench_key"}]'

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'ab.sh: %s\n' "$*" >&2; exit 1; }

# shellcheck source=tests/lib/pg.sh
. "$ROOT/tests/lib/pg.sh"
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"     # bench_build
mapfile -t PKGS < <(mp_build_packages)
mp_install_packages "${PKGS[@]}" wrk curl git
PG_BINDIR=$(mp_pg_bindir)
BASE_COMMIT=$(git -C "$ROOT" rev-parse --verify "$REV^{commit}") || die "no revision $REV"

mkdir -p "$ROOT/build"
exec 9>"$ROOT/build/.bench.lock"   # shared with ingest.sh: one run at a time
flock -n 9 || { log "another benchmark is running; waiting for it to end"; flock 9; }

WORK=$(mktemp -d /tmp/mpab.XXXXXX)   # builds, logs, the cluster; removed at exit
chmod 755 "$WORK"
PIDS=() PG_STARTED=''
cleanup() {
	set +e
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
	[ -n "$PG_STARTED" ] && mp_pg_stop "$WORK/pg"
	mkdir -p "$BUILD/logs-ab" && cp "$WORK"/*.log "$BUILD/logs-ab/" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- two builds
log "building this tree into $BUILD"
bench_build "$ROOT" "$BUILD"
log "building $REV (${BASE_COMMIT:0:12}) into $WORK/base-build"
mkdir "$WORK/base-src"
git -C "$ROOT" archive "$BASE_COMMIT" | tar -x -C "$WORK/base-src"
bench_build "$WORK/base-src" "$WORK/base-build"
declare -A BIN=([this]=$BUILD/server/milepost [base]=$WORK/base-build/server/milepost)

# ------------------------------------------------------- cluster and daemons
# Durable as in production, like ingest.sh.
PGSOCK=$(mp_pg_sockdir "$WORK/s")
PGPORT=$(mp_pg_free_port)
mp_pg_init "$WORK/pg" -N
mp_pg_start "$WORK/pg" "$PGSOCK" "$PGPORT" fsync=on synchronous_commit=on \
	full_page_writes=on max_wal_size=1GB
PG_STARTED=1
sql() { "$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -U milepost -d "$1" -c "$2"; }
echo '{}' >"$WORK/empty.json"

declare -A PORT
for side in this base; do
	sql postgres "CREATE DATABASE mp_$side"
	env_of=(MILEPOST_CONFIG="$WORK/empty.json" MILEPOST_SITES="$SITES" MILEPOST_LOG_LEVEL=warn
		MILEPOST_RATE_LIMIT_PER_IP=0 MILEPOST_RATE_LIMIT_PER_KEY=0
		MILEPOST_DATABASE_URL="postgresql:///mp_$side?host=$PGSOCK&port=$PGPORT&user=milepost")
	env "${env_of[@]}" "${BIN[$side]}" migrate >"$WORK/migrate-$side.log" 2>&1 ||
		{ cat "$WORK/migrate-$side.log" >&2; die "milepost migrate ($side) failed"; }
	PORT[$side]=$(mp_pg_free_port)
	# THIS_ENV: more configuration for this tree's daemon only, to take a
	# change apart (THIS_ENV=MILEPOST_QUERY_INDEX=false).
	[ "$side" = this ] && read -r -a more <<<"${THIS_ENV:-}" || more=()
	env "${env_of[@]}" "${more[@]}" MILEPOST_LISTEN="127.0.0.1:${PORT[$side]}" "${BIN[$side]}" serve \
		>"$WORK/daemon-$side.log" 2>&1 &
	PIDS+=($!)
	for i in $(seq 301); do
		curl -sf -o /dev/null "http://127.0.0.1:${PORT[$side]}/readyz" && break
		[ "$i" != 301 ] || die "the $side daemon did not become ready: $(tail -5 "$WORK/daemon-$side.log")"
		sleep 0.1
	done
done

# ----------------------------------------------------------------- the loads
# load SIDE PER_REQUEST CONNS: a warm-up, then the measured load; prints the
# requests per second times events per request (events/s).
load() {
	local url="http://127.0.0.1:${PORT[$1]}/v1/events" line
	EVENTS_PER_REQUEST=$2 wrk -t2 -c"$3" -d"${WARMUP}s" -s "$ROOT/tests/bench/events.lua" "$url" >/dev/null
	[ -z "${NO_CHECKPOINT:-}" ] && sql postgres CHECKPOINT   # as in ingest.sh
	line=$(EVENTS_PER_REQUEST=$2 wrk -t2 -c"$3" -d"${DURATION}s" --timeout 10s \
		-s "$ROOT/tests/bench/events.lua" "$url" | grep '^RESULT ') || die "wrk gave no result"
	[[ $line == *" non2xx=0 sockerr=0 timeouts=0 "* ]] || die "the $1 daemon misbehaved: $line"
	awk -v per="$2" '{ for (i = 1; i <= NF; i++) if ($i ~ /^rps=/) printf "%.0f\n", substr($i, 5) * per }' <<<"$line"
}

declare -A RATIOS FIGS
for r in $(seq "$ROUNDS"); do
	for spec in "single 1 64" "batch 100 16"; do
		read -r name per conns <<<"$spec"
		if [ $((r % 2)) = 1 ]; then order="this base"; else order="base this"; fi
		declare -A got=()
		for side in $order; do
			got[$side]=$(load "$side" "$per" "$conns")
			FIGS[$name-$side]+="${got[$side]} "
		done
		ratio=$(awk -v a="${got[this]}" -v b="${got[base]}" 'BEGIN { printf "%.3f", a / b }')
		RATIOS[$name]+="$ratio "
		log "round $r/$ROUNDS, $name: this ${got[this]}, $REV ${got[base]} events/s: $ratio"
	done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
{
	echo "# tests/bench/ab.sh: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD || echo ' (+ changes)') against $REV (${BASE_COMMIT:0:12})"
	echo
	echo "$(date -u +%F), $ROUNDS rounds of ${DURATION} s per load and side, alternating; $(nproc) cores."
	echo
	echo "| load | this, events/s (median) | $REV, events/s (median) | this / $REV per round | median ratio |"
	echo "|---|---|---|---|---|"
	for name in single batch; do
		echo "| $name | $(median <<<"${FIGS[$name-this]}") | $(median <<<"${FIGS[$name-base]}") | ${RATIOS[$name]% } | **$(median <<<"${RATIOS[$name]}")** |"
	done
} | tee "$BUILD/ab.md"
}
