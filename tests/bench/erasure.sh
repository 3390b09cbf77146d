#!/usr/bin/env bash
# tests/bench/erasure.sh - DELETE /api/v1/people/{id} on the synthetic shop
# of queries.sh (see docs/performance.md, "Erasure").
#
# One run: the cluster and data of queries.sh (PEOPLE people over DAYS days:
# about 5.4 million events with the defaults; with KEEP_DATA, the same
# cluster as queries.sh's), migrated by the binary (the time it took is
# reported when a migration ran: that is what an upgrade costs), then the
# daemon with an admin key and its real query pool (statement_timeout 30 s)
# erases two people: one with many ids (a user and their devices,
# which the script sends first: DEVICES=50 devices of EVENTS_PER=10 events)
# and an ordinary visitor (one anonymous id). Each
# DELETE is timed with curl; a 500 is a statement over the pool's limit. As a
# baseline measured in the same run, psql times a plain count of the site's
# events (one scan): the ratio says how an erasure compares with reading the
# site once. The figures go to build/bench/erasure.md.
#
# Each run erases two more people: a kept data set loses a few hundred
# events a run.
#
# Usage (as root on Debian 12; installs what is missing with apt-get):
#   tests/bench/erasure.sh
# Environment:
#   PEOPLE=500000  DAYS=30  RUNS=3 (of the baseline)
#   DEVICES=50  EVENTS_PER=10  the person with many ids
#   KEEP_DATA=DIR  keep the cluster in DIR and reuse it (as queries.sh does)
#   MILEPOST=PATH  a milepost binary to use instead of this tree's (an
#                  earlier revision's, for the figure before a change; it
#                  must know the schema the data set is at)
# Exit status: 0 when the run completed (whatever the figures), 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build/bench
PEOPLE=${PEOPLE:-500000}
DAYS=${DAYS:-30}
RUNS=${RUNS:-3}
ADMIN_KEY=ak_bench_admin_0123456789abcdef

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'erasure.sh: %s\n' "$*" >&2; exit 1; }

# shellcheck source=tests/lib/pg.sh
. "$ROOT/tests/lib/pg.sh"
# shellcheck source=tests/bench/lib.sh
. "$ROOT/tests/bench/lib.sh"     # bench_build, bench_shop_*
mapfile -t PKGS < <(mp_build_packages)
mp_install_packages "${PKGS[@]}" curl jq
PG_BINDIR=$(mp_pg_bindir)

bench_lock
if [ -z "${MILEPOST:-}" ]; then
	bench_release
else
	COMMIT="$MILEPOST"
fi
bench_workdir mpe
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
version() { sql -d mp_queries -c "SELECT max(version) FROM schema_migrations"; }
V0=$(version)
start=$(date +%s.%N)
echo '{}' >"$WORK/empty.json"
MILEPOST_DATABASE_URL=$DB_URL MILEPOST_CONFIG="$WORK/empty.json" "$MILEPOST" migrate >"$WORK/migrate.log" 2>&1 ||
	{ cat "$WORK/migrate.log" >&2; die "migrate failed"; }
MIGRATE_S=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
V1=$(version)
EVENTS=$(sql -d mp_queries -c "SELECT count(*) FROM events WHERE site_id = 'bench'")
log "$EVENTS events; schema $V0 -> $V1 in $MIGRATE_S s"
sql -d mp_queries -c "ANALYZE"

# The ordinary visitor: the anonymous id of an event whose person has no
# other id.
ORDINARY=$(sql -d mp_queries -c "SELECT e.anonymous_id FROM events e
	WHERE e.site_id = 'bench' AND e.user_id IS NULL AND e.anonymous_id IS NOT NULL
	AND NOT EXISTS (SELECT 1 FROM identities j WHERE j.person_id = e.person_id
	 AND j.site_id = e.site_id AND j.id <> e.anonymous_id)
	AND NOT EXISTS (SELECT 1 FROM person_merges m WHERE m.site_id = e.site_id
	 AND (m.into_person = e.person_id OR m.from_person = e.person_id)) LIMIT 1")
[ -n "$ORDINARY" ] || die "no visitor to erase"
# queries_data.sql numbers its people itself: the people ingest makes
# below must be numbered after them.
sql -d mp_queries -c "SELECT setval('person_ids', GREATEST((SELECT max(person_id) FROM identities),
	(SELECT max(from_person) FROM person_merges), (SELECT last_value FROM person_ids)))" >/dev/null
bench_shop_daemon admin "$ADMIN_KEY"

# The person with many ids (the data set's have two at most): a user who
# logged in from DEVICES devices, each sending EVENTS_PER events, sent
# through the daemon so that ingest links them as it would.
DEVICES=${DEVICES:-50}
EVENTS_PER=${EVENTS_PER:-10}
BIG=user-$(date +%s)-$$
for d in $(seq "$DEVICES"); do
	jq -nc --arg u "$BIG" --arg a "$BIG-device-$d" --argjson n "$EVENTS_PER" \
		'{batch: [range($n) | {name: "page_viewed", anonymous_id: $a,
		  url: "https://shop.example/p/\(.)", consent: {analytics: true}}
		  + (if . == 0 then {user_id: $u} else {} end)]}' |
		curl -sf -o /dev/null -H 'Content-Type: application/json' -H 'X-Milepost-Key: wk_bench_key' \
			--data-binary @- "http://127.0.0.1:$PORT/v1/events" || die "storing the person's events failed"
done

# erase ID: "HTTP-status milliseconds linked-ids events" of one DELETE.
erase() {
	local code t
	read -r code t < <(curl -s -o "$WORK/answer.json" -w '%{http_code} %{time_total}\n' -X DELETE \
		-H "Authorization: Bearer $ADMIN_KEY" \
		"http://127.0.0.1:$PORT/api/v1/people/$(jq -rn --arg i "$1" '$i | @uri')?site=bench")
	[ "$code" = 200 ] || log "DELETE answered $code: $(cat "$WORK/answer.json")"
	printf '%s %s %s\n' "$code" "$(awk -v t="$t" 'BEGIN {printf "%.0f", t * 1000}')" \
		"$(jq -r 'if .erased then "\(.erased.linked_ids) \(.erased.events)" else "- -" end' "$WORK/answer.json")"
}

BASE=$(bench_sql_ms "SELECT count(*) FROM events WHERE site_id = 'bench'")
log "erasing"
ROWS=()
for who in "a user with $DEVICES devices|$BIG" "an ordinary visitor|$ORDINARY"; do
	IFS='|' read -r name id <<<"$who"
	read -r code ms ids n <<<"$(erase "$id")"
	ROWS+=("| $name | $ids | $n | $code | $ms | $(awk -v v="$ms" -v b="$BASE" 'BEGIN {printf "%.2f", v / b}') |")
done
{
	echo "## Erasure, $(date -u +%Y-%m-%d), $COMMIT"
	echo
	echo "$EVENTS events, $PEOPLE people, $DAYS days; schema $V0 -> $V1 (migrate: $MIGRATE_S s)."
	echo "Baseline: one \`count(*)\` of the site's events: $BASE ms."
	echo
	echo "| erased | linked ids | events | HTTP | ms | × baseline |"
	echo "|---|---|---|---|---|---|"
	printf '%s\n' "${ROWS[@]}"
} | tee "$BUILD/erasure.md"
