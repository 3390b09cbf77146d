# tests/bench/lib.sh - what the benchmark scripts share. Source it.

# bench_build SRC DIR: a release build (no tests) of the tree SRC into DIR,
# set up on first use and reconfigured after.
bench_build() {
	if [ -f "$2/build.ninja" ]; then
		meson setup --reconfigure "$2" "$1" -Dbuildtype=release -Dtests=false >/dev/null
	else
		meson setup "$2" "$1" -Dbuildtype=release -Dtests=false >/dev/null
	fi
	ninja -C "$2" >/dev/null
}

# bench_lock: one benchmark at a time on this machine (build/.bench.lock,
# held on descriptor 9 until the script exits). Needs ROOT.
bench_lock() {
	mkdir -p "$ROOT/build"
	exec 9>"$ROOT/build/.bench.lock"
	flock 9
}

# bench_release: builds this tree into $BUILD (release); sets MILEPOST and
# COMMIT (the short hash, marked when the tree has uncommitted changes).
# Needs ROOT, BUILD.
bench_release() {
	printf '== building release into build/bench\n' >&2
	bench_build "$ROOT" "$BUILD"
	MILEPOST=$BUILD/server/milepost
	COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
}

# bench_workdir PREFIX: WORK, a new directory /tmp/PREFIX.* for config and
# logs that PostgreSQL's user can read, and PGDATA, the cluster: KEEP_DATA,
# else under WORK.
bench_workdir() {
	WORK=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$WORK"
	PGDATA=${KEEP_DATA:-$WORK/pg}
}

# bench_shop_start: the private cluster of queries.sh and erasure.sh in
# $PGDATA (made when missing), started with its socket under $WORK, and in
# it the database mp_queries filled with the synthetic shop of
# queries_data.sql ($PEOPLE people over $DAYS days to today, migrated by
# $MILEPOST first) unless it is there. Needs ROOT, WORK, PGDATA, PEOPLE,
# DAYS, MILEPOST, PG_BINDIR; sets PGSOCK, PGPORT, PG_STARTED, DB_URL, FROM,
# TO and the function sql (psql as milepost on that cluster).
bench_shop_start() {
	local fresh='' start
	PGSOCK=$(mp_pg_sockdir "$WORK/s")
	PGPORT=$(mp_pg_free_port)
	if [ ! -f "$PGDATA/PG_VERSION" ]; then
		mkdir -p "$PGDATA"
		mp_pg_init "$PGDATA" -N
		fresh=1
	fi
	mp_pg_start "$PGDATA" "$PGSOCK" "$PGPORT" shared_buffers=512MB work_mem=64MB \
		max_wal_size=4GB synchronous_commit=off
	PG_STARTED=1
	sql() { "$PG_BINDIR/psql" -XAtq -v ON_ERROR_STOP=1 -h "$PGSOCK" -p "$PGPORT" -U milepost "$@"; }
	DB_URL="postgresql:///mp_queries?host=$PGSOCK&port=$PGPORT&user=milepost"
	TO=$(date -u +%Y-%m-%d)
	FROM=$(date -u -d "$TO - $DAYS days" +%Y-%m-%d)
	if [ -z "$fresh" ] && sql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'mp_queries'" | grep -q 1; then
		return
	fi
	sql -d postgres -c "CREATE DATABASE mp_queries"
	echo '{}' >"$WORK/empty.json"
	MILEPOST_DATABASE_URL=$DB_URL MILEPOST_CONFIG="$WORK/empty.json" "$MILEPOST" migrate >"$WORK/migrate.log" 2>&1 ||
		{ cat "$WORK/migrate.log" >&2; die "migrate failed"; }
	log "generating $PEOPLE people over $DAYS days from $FROM (minutes)"
	start=$(date +%s)
	sql -d mp_queries -v people="$PEOPLE" -v days="$DAYS" -v t0="$FROM" -f "$ROOT/tests/bench/queries_data.sql" >/dev/null
	log "generated in $(( $(date +%s) - start )) s"
}

# bench_shop_daemon SCOPE KEY: writes $WORK/config.json (the example plan,
# the site bench, one API key of SCOPE whose SHA-256 is KEY's) and starts
# $MILEPOST serve with it, logging to $WORK/daemon.log; sets PORT and
# DAEMON_PID once /readyz answers.
bench_shop_daemon() {
	local sha
	sha=$(printf '%s' "$2" | sha256sum | cut -d' ' -f1)
	PORT=$(mp_pg_free_port)
	cat >"$WORK/config.json" <<EOC
{"listen": "127.0.0.1:$PORT", "database_url": "$DB_URL", "log_level": "warn",
 "plan": "$ROOT/config/plan.json", "pii_hash_key": "bench-pii-key-0123456789abcdef",
 "rate_limit_per_ip": 0, "rate_limit_per_key": 0,
 "sites": [{"id": "bench", "name": "Bench", "write_key": "wk_bench_key"}],
 "api_keys": [{"name": "bench", "scope": "$1", "key_sha256": "$sha"}]}
EOC
	"$MILEPOST" serve --config "$WORK/config.json" >>"$WORK/daemon.log" 2>&1 &
	DAEMON_PID=$!
	bench_wait_ready
}

# bench_wait_ready: waits up to 20 s for the daemon on $PORT.
bench_wait_ready() {
	for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && return; sleep 0.2; done
	cat "$WORK/daemon.log" >&2
	die "daemon not ready"
}

# bench_median: the median of the numbers on stdin, one a line.
bench_median() {
	sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}

# bench_sql_ms QUERY: the median milliseconds of $RUNS runs of QUERY in
# mp_queries after one warm-up, as psql times it.
bench_sql_ms() {
	local i
	for i in $(seq 0 "$RUNS"); do
		sql -d mp_queries -c '\timing on' -c "$1" |
			sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | { [ "$i" -gt 0 ] && cat || cat >/dev/null; }
	done | bench_median
}
