#!/usr/bin/env bash
# shellcheck disable=SC2317 # (functions reached only from the traps)
#
# deploy/run-local.sh - THE run command: Milepost on this machine, with a
# private PostgreSQL of its own.
#
#   deploy/run-local.sh [ARGS for `milepost serve`...]
#
# On a fresh Debian 12 machine as root it installs what is missing
# (apt-get); as another user the packages must already be installed. Then it
#   - builds build/release;
#   - creates, the first time, a PostgreSQL cluster in $MILEPOST_DATA/pg
#     (default: data/pg in the repository), kept for the next runs, and
#     starts it if it is not running: no TCP, a Unix socket only;
#   - creates the database `milepost` if missing, applies the migrations;
#   - prints a curl command that sends an event and a psql command to see it;
#   - runs `milepost serve --config config/milepost.json ARGS...` in the
#     foreground. Ctrl-C or SIGTERM stops the daemon, then PostgreSQL.
#
# MILEPOST_DATABASE_URL is set to the private cluster; every other MILEPOST_*
# variable (MILEPOST_LISTEN, MILEPOST_LOG_LEVEL, ...) is read by the daemon
# itself, see docs/config.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=tests/lib/pg.sh
. "$ROOT/tests/lib/pg.sh"

CONFIG=config/milepost.json
BUILD=build/release
BIN="$BUILD/server/milepost"

PG_DATA=""
PG_SOCK=""
PG_STARTED=0
DAEMON_PID=""

say() {
  printf '==> %s\n' "$*"
}

# stop_daemon: SIGTERM to the daemon, then waits for its graceful shutdown
# (shutdown_timeout_s, 10 s by default); SIGKILL after a minute.
stop_daemon() {
  local pid="$DAEMON_PID" waited=0
  [ -n "$pid" ] || return 0
  DAEMON_PID=""
  kill -0 "$pid" 2>/dev/null || {
    wait "$pid" 2>/dev/null || true
    return 0
  }
  say "Stopping milepost (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge 600 ]; then
      mp_log "milepost did not stop within 60 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  wait "$pid" 2>/dev/null || true
}

stop_postgres() {
  if [ "$PG_STARTED" -eq 1 ] && [ -n "$PG_DATA" ]; then
    say "Stopping PostgreSQL"
    mp_pg_stop "$PG_DATA" || true
    PG_STARTED=0
    mp_pg_remove_sockdir "$PG_SOCK" || true
  elif [ -n "$PG_DATA" ] && mp_pg_is_running "$PG_DATA"; then
    local runas bindir
    runas="$(mp_pg_runas)" || true
    bindir="$(mp_pg_bindir)" || true
    say "PostgreSQL was already running before this script: left running."
    say "Stop it with: ${runas:+runuser -u $runas -- }$bindir/pg_ctl stop -D $PG_DATA"
  fi
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM HUP
  stop_daemon
  stop_postgres
  exit "$status"
}

on_signal() {
  trap - INT TERM HUP
  echo
  stop_daemon
  stop_postgres
  trap - EXIT
  exit 0
}

trap on_exit EXIT
trap on_signal INT TERM HUP

# The host:port to show in the curl example: --listen from the arguments,
# else MILEPOST_LISTEN, else the config file's (127.0.0.1:8080); a wildcard
# address becomes loopback.
curl_address() {
  local listen="${MILEPOST_LISTEN:-127.0.0.1:8080}" prev=""
  local arg
  for arg in "$@"; do
    case "$arg" in
      --listen=*) listen="${arg#--listen=}" ;;
      *) [ "$prev" != --listen ] || listen="$arg" ;;
    esac
    prev="$arg"
  done
  case "$listen" in
    0.0.0.0:*) listen="127.0.0.1:${listen#0.0.0.0:}" ;;
    \[::\]:*) listen="[::1]:${listen#\[::\]:}" ;;
    :*) listen="127.0.0.1$listen" ;;
  esac
  printf '%s\n' "$listen"
}

# 1. Packages: to build, and PostgreSQL; curl for the example.
mapfile -t PACKAGES < <(mp_build_packages)
mp_install_packages "${PACKAGES[@]}" curl

# 2. Build.
say "Building $BUILD"
if [ -f "$BUILD/meson-private/coredata.dat" ]; then
  meson setup --reconfigure -Dbuildtype=release -Dtests=false "$BUILD" >/dev/null
else
  rm -rf -- "$BUILD"
  meson setup -Dbuildtype=release -Dtests=false "$BUILD" >/dev/null
fi
ninja -C "$BUILD"

# 3. The private PostgreSQL cluster.
DATA="$(mp_abspath "${MILEPOST_DATA:-$ROOT/data}")"
mkdir -p "$DATA"
if [ -z "${MILEPOST_DATA:-}" ] && ! mp_pg_can_reach "$DATA"; then
  # As root with the checkout in a private directory (/root/...), the
  # postgres user cannot reach data/: keep the data in /var/lib instead, in
  # a folder of this checkout's own.
  FALLBACK="/var/lib/milepost/data-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
  say "The postgres OS user cannot reach $DATA; using $FALLBACK" \
    "(set MILEPOST_DATA to choose)"
  rmdir -- "$DATA" 2>/dev/null || true
  DATA="$FALLBACK"
  mkdir -p "$DATA"
  chmod 755 "${DATA%/*}" "$DATA"
fi
mp_pg_check_access "$DATA" || mp_die "choose a data folder it can reach:" \
  "MILEPOST_DATA=/var/lib/milepost deploy/run-local.sh"
PG_DATA="$DATA/pg"
if [ ! -f "$PG_DATA/PG_VERSION" ]; then
  if [ -d "$PG_DATA" ] && [ -n "$(ls -A "$PG_DATA")" ]; then
    mp_die "$PG_DATA exists but holds no PostgreSQL cluster; move it away"
  fi
  say "Creating the PostgreSQL cluster in $PG_DATA"
  mp_pg_init "$PG_DATA"
fi
# The port only names the socket file (no TCP): chosen once, kept.
PORT_FILE="$DATA/pg.port"
if [ ! -s "$PORT_FILE" ]; then
  mp_pg_free_port >"$PORT_FILE"
fi
PG_PORT="$(tr -dc '0-9' <"$PORT_FILE")"
[ -n "$PG_PORT" ] || mp_die "$PORT_FILE holds no port number"

if mp_pg_is_running "$PG_DATA"; then
  PG_PORT="$(mp_pg_pid_field "$PG_DATA" 4)"
  PG_SOCK="$(mp_pg_pid_field "$PG_DATA" 5)"
  say "PostgreSQL is already running on $PG_SOCK (port $PG_PORT)"
else
  PG_SOCK="$(mp_pg_sockdir "$DATA/run")"
  say "Starting PostgreSQL (log: $(mp_pg_logfile "$PG_DATA"))"
  PG_STARTED=1
  mp_pg_start "$PG_DATA" "$PG_SOCK" "$PG_PORT" \
    max_wal_size=1GB shared_buffers=128MB
fi

PSQL=(psql -X -q -h "$PG_SOCK" -p "$PG_PORT" -U "$MP_PG_SUPERUSER")
if [ "$("${PSQL[@]}" -d postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = 'milepost'")" != 1 ]; then
  say "Creating the database milepost"
  "${PSQL[@]}" -d postgres -c 'CREATE DATABASE milepost'
fi

if [ -n "${MILEPOST_DATABASE_URL:-}" ]; then
  say "Note: MILEPOST_DATABASE_URL is replaced by the private cluster's"
fi
MILEPOST_DATABASE_URL="postgresql:///milepost?host=$(mp_url_encode "$PG_SOCK")&port=$PG_PORT&user=$MP_PG_SUPERUSER"
export MILEPOST_DATABASE_URL

# 4. Migrations.
say "Applying migrations"
"$BIN" migrate --config "$CONFIG"

# 5. Serve.
ADDRESS="$(curl_address "$@")"
cat <<EOF

Milepost is starting on http://$ADDRESS (Ctrl-C stops it and PostgreSQL).

Send an event:
  curl -i -X POST http://$ADDRESS/v1/events -H 'X-Milepost-Key: wk_shop_example' -H 'Content-Type: application/json' -d '{"name":"product_viewed","anonymous_id":"a1","consent":{"analytics":true},"props":{"product_id":"P-1001","sku":"SKU-1"}}'

Look at the stored events:
  psql '$MILEPOST_DATABASE_URL' -c 'SELECT site_id, name, ts, anonymous_id, props FROM events ORDER BY received_at DESC LIMIT 10'

EOF

"$BIN" serve --config "$CONFIG" "$@" &
DAEMON_PID=$!
status=0
wait "$DAEMON_PID" || status=$?
# Here only when the daemon ended by itself (a signal runs on_signal).
DAEMON_PID=""
if [ "$status" -ne 0 ]; then
  mp_log "milepost serve exited with status $status"
fi
exit "$status"
