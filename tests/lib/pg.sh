# shellcheck shell=bash
#
# tests/lib/pg.sh - shared shell functions for tests/run.sh and
# deploy/run-local.sh: installing Debian packages and running a private,
# throwaway PostgreSQL cluster (no system service, no TCP, a Unix socket in a
# directory of our own).
#
# Source it from bash (`. tests/lib/pg.sh`); the callers use
# `set -euo pipefail`. Every function is prefixed `mp_`. Functions that fail
# print why on stderr and return non-zero (mp_die exits).
#
# Running as root: initdb, pg_ctl and postgres refuse to run as root, so they
# run as the `postgres` OS user (created by Debian's postgresql-common) through
# `runuser -u postgres --`, and the directories they write are chowned to it.
# As any other user they run as that user.

# The PostgreSQL major version installed and preferred.
MP_PG_MAJOR=15
# The superuser that mp_pg_init creates (trust authentication, socket only).
MP_PG_SUPERUSER=milepost

mp_log() {
  printf '%s\n' "$*" >&2
}

mp_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# mp_abspath PATH: PATH made absolute (it need not exist).
mp_abspath() {
  case "$1" in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s/%s\n' "$PWD" "$1" ;;
  esac
}

# ---------------------------------------------------------------------------
# Packages

# mp_pkg_installed PKG: true when the Debian package PKG is installed.
mp_pkg_installed() {
  local status
  status="$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" || return 1
  [ "$status" = installed ]
}

# mp_build_packages: the Debian packages needed to build Milepost and run its
# tests, one a line. gcc's ASan/UBSan runtimes (libasan8, libubsan1) come with
# gcc through libgcc-12-dev on Debian 12; they are named anyway. esbuild
# minifies the JavaScript snippet the binary serves (server/js/); libcurl
# calls the alerts' webhooks; openssl makes the TLS test's certificate.
mp_build_packages() {
  printf '%s\n' \
    meson ninja-build pkg-config gcc libc6-dev libasan8 libubsan1 \
    libmicrohttpd-dev libjansson-dev libpq-dev zlib1g-dev libsodium-dev libcmocka-dev \
    libcurl4-openssl-dev \
    python3 esbuild "postgresql-$MP_PG_MAJOR" "postgresql-client-$MP_PG_MAJOR" \
    util-linux openssl
}

# mp_apt_install PKG...: apt-get update and install, three tries.
mp_apt_install() {
  local apt_opts=(-y -q --no-install-recommends
    -o DPkg::Lock::Timeout=600
    -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold)
  local try
  for try in 1 2 3; do
    if DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1 \
        apt-get install "${apt_opts[@]}" "$@" </dev/null; then
      return 0
    fi
    if [ "$try" -eq 3 ]; then
      mp_log "error: apt-get could not install: $*"
      return 1
    fi
    mp_log "apt-get failed (try $try of 3); trying again in 10 s"
    sleep 10
  done
}

# mp_install_packages PKG...: installs, with apt-get, the packages that are
# not installed yet. Runs `apt-get update` only when something is missing.
# As a user other than root, missing packages are an error (with the command
# to run as root).
mp_install_packages() {
  local missing=() pkg server=0
  if ! command -v dpkg-query >/dev/null 2>&1; then
    mp_log "warning: dpkg-query not found; not checking for packages: $*"
    return 0
  fi
  for pkg in "$@"; do
    if ! mp_pkg_installed "$pkg"; then
      missing+=("$pkg")
      case "$pkg" in
        postgresql | postgresql-[0-9]*) server=1 ;;
      esac
    fi
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    return 0
  fi
  if [ "$EUID" -ne 0 ]; then
    mp_log "error: missing Debian packages: ${missing[*]}"
    mp_log "install them as root: apt-get install ${missing[*]}"
    return 1
  fi

  # Debian's postgresql-NN creates and starts a system cluster "main" on
  # port 5432 when installed, unless createcluster.conf says not to. Ours are
  # private, so say not to, if nobody configured it yet. ucf, which manages
  # that file, keeps the existing one (UCF_FORCE_CONFFOLD below).
  local conf=/etc/postgresql-common/createcluster.conf
  if [ "$server" -eq 1 ] && [ ! -e "$conf" ]; then
    mkdir -p "${conf%/*}"
    printf '%s\n' \
      '# Written by Milepost (tests/lib/pg.sh) before installing PostgreSQL:' \
      '# no system cluster; Milepost runs private clusters of its own.' \
      'create_main_cluster = false' >"$conf"
  fi

  mp_log "Installing Debian packages: ${missing[*]}"
  # Packages with a service (prometheus, for promtool) start it when
  # installed, through invoke-rc.d, unless a policy-rc.d says no. None is
  # wanted here: say no for this install, if nobody said anything yet.
  local policy=/usr/sbin/policy-rc.d own_policy=0 status=0
  if [ ! -e "$policy" ]; then
    printf '%s\n' '#!/bin/sh' \
      '# Written by Milepost (tests/lib/pg.sh) for an install: no service starts.' \
      'exit 101' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  mp_apt_install "${missing[@]}" || status=$?
  if [ "$own_policy" -eq 1 ]; then
    rm -f -- "$policy"
  fi
  [ "$status" -eq 0 ] || return "$status"
  for pkg in "${missing[@]}"; do
    if ! mp_pkg_installed "$pkg"; then
      mp_log "error: package $pkg is still not installed"
      return 1
    fi
  done
}

# ---------------------------------------------------------------------------
# PostgreSQL server binaries

# mp_pg_bindir: the directory holding initdb, pg_ctl and postgres:
# /usr/lib/postgresql/15/bin, else the newest /usr/lib/postgresql/*/bin,
# else the directory of an initdb on PATH.
mp_pg_bindir() {
  local dir="/usr/lib/postgresql/$MP_PG_MAJOR/bin" best="" v
  if [ -x "$dir/initdb" ]; then
    printf '%s\n' "$dir"
    return 0
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] || continue
    v="${dir#/usr/lib/postgresql/}"
    v="${v%/bin}"
    case "$v" in *[!0-9]*) continue ;; esac
    if [ -z "$best" ] || [ "$v" -gt "$best" ]; then
      best="$v"
    fi
  done
  if [ -n "$best" ]; then
    printf '/usr/lib/postgresql/%s/bin\n' "$best"
    return 0
  fi
  if dir="$(command -v initdb 2>/dev/null)"; then
    printf '%s\n' "${dir%/*}"
    return 0
  fi
  mp_log "error: no PostgreSQL server binaries (initdb) found;" \
    "install postgresql-$MP_PG_MAJOR"
  return 1
}

# mp_pg_runas: the OS user that runs the server binaries: `postgres` when we
# are root (initdb refuses root), empty otherwise.
mp_pg_runas() {
  if [ "$EUID" -ne 0 ]; then
    printf '\n'
    return 0
  fi
  if ! id -u postgres >/dev/null 2>&1; then
    mp_log "error: running as root, but there is no 'postgres' OS user to" \
      "run PostgreSQL as (it comes with postgresql-common)"
    return 1
  fi
  printf 'postgres\n'
}

# mp_pg_run CMD ARGS...: runs CMD as the user from mp_pg_runas, from `/` so
# that an unreadable working directory does not matter: pass absolute paths.
mp_pg_run() {
  local runas
  runas="$(mp_pg_runas)" || return 1
  if [ -n "$runas" ]; then
    (cd / && runuser -u "$runas" -- "$@")
  else
    "$@"
  fi
}

# mp_pg_chown PATH...: gives PATHs to the user from mp_pg_runas, if any.
mp_pg_chown() {
  local runas
  runas="$(mp_pg_runas)" || return 1
  if [ -n "$runas" ]; then
    chown "$runas:" "$@"
  fi
}

# mp_pg_can_reach DIR: true when the user that runs the server can reach
# DIR (not so for a checkout under /root, mode 0700, when we are root).
mp_pg_can_reach() {
  local runas
  runas="$(mp_pg_runas)" || return 1
  [ -n "$runas" ] || return 0
  (cd / && runuser -u "$runas" -- test -x "$1")
}

# mp_pg_check_access DIR: like mp_pg_can_reach, saying why it fails.
mp_pg_check_access() {
  if ! mp_pg_can_reach "$1"; then
    mp_log "error: the '$(mp_pg_runas)' OS user, which runs PostgreSQL," \
      "cannot reach $1 (a parent directory is not searchable by it)"
    return 1
  fi
}

# mp_sh_quote ARG: ARG quoted for /bin/sh (pg_ctl -o goes through a shell).
mp_sh_quote() {
  local q="'\\''"
  printf "'%s'" "${1//\'/$q}"
}

# ---------------------------------------------------------------------------
# Clusters

# mp_pg_free_port: a TCP port that is free on 127.0.0.1 now. Our clusters
# listen on no TCP address; the port names the socket file .s.PGSQL.PORT.
mp_pg_free_port() {
  python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# mp_pg_sockdir PREFERRED: creates and prints the socket directory to use:
# PREFERRED when the socket path in it fits the 107 bytes of a Unix socket
# address and needs no quoting, else a new short directory /tmp/mp.XXXXXX
# (remove it with mp_pg_remove_sockdir when done). Owned by the server user.
mp_pg_sockdir() {
  local dir
  dir="$(mp_abspath "$1")"
  # DIR + "/.s.PGSQL." + up to 5 digits <= 107 bytes.
  if [ "${#dir}" -gt 92 ] || [[ "$dir" == *[!A-Za-z0-9._/-]* ]]; then
    dir="$(mktemp -d /tmp/mp.XXXXXX)" || return 1
  else
    mkdir -p "$dir" || return 1
  fi
  if ! { chmod 700 "$dir" && mp_pg_chown "$dir"; }; then
    return 1
  fi
  printf '%s\n' "$dir"
}

# mp_pg_remove_sockdir DIR: removes DIR if mp_pg_sockdir made it in /tmp.
mp_pg_remove_sockdir() {
  case "$1" in
    /tmp/mp.??????) rm -rf -- "$1" ;;
  esac
}

# mp_pg_init DATADIR [INITDB-ARGS...]: a new cluster in DATADIR (created, or
# empty) with the superuser `milepost`, trust authentication, UTF8 and the
# C locale.
mp_pg_init() {
  local datadir bindir out
  datadir="$(mp_abspath "$1")"
  shift
  bindir="$(mp_pg_bindir)" || return 1
  if ! { mkdir -p "$datadir" && chmod 700 "$datadir" &&
    mp_pg_chown "$datadir"; }; then
    return 1
  fi
  mp_pg_check_access "$datadir" || return 1
  if ! out="$(mp_pg_run "$bindir/initdb" -D "$datadir" -U "$MP_PG_SUPERUSER" \
    --auth=trust -E UTF8 --locale=C "$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    mp_log "error: initdb failed for $datadir"
    return 1
  fi
}

# mp_pg_logfile DATADIR: the server log, DATADIR/../postgres.log.
mp_pg_logfile() {
  local datadir
  datadir="$(mp_abspath "$1")"
  datadir="${datadir%/}"
  printf '%s/postgres.log\n' "${datadir%/*}"
}

# mp_pg_is_running DATADIR: true when a server runs on DATADIR.
mp_pg_is_running() {
  local datadir bindir
  datadir="$(mp_abspath "$1")"
  [ -f "$datadir/postmaster.pid" ] || return 1
  bindir="$(mp_pg_bindir)" || return 1
  mp_pg_run "$bindir/pg_ctl" status -D "$datadir" >/dev/null 2>&1
}

# mp_pg_start DATADIR SOCKDIR PORT [SETTING...]: starts the server on
# DATADIR, listening on no TCP address and on SOCKDIR/.s.PGSQL.PORT, and
# waits until it accepts connections. Each SETTING is `name=value` (passed as
# `-c name=value`) or an option for postgres starting with `-`. The log goes
# to DATADIR/../postgres.log.
mp_pg_start() {
  local datadir sockdir port bindir logfile opts arg
  datadir="$(mp_abspath "$1")"
  sockdir="$(mp_abspath "$2")"
  port="$3"
  shift 3
  bindir="$(mp_pg_bindir)" || return 1
  logfile="$(mp_pg_logfile "$datadir")"
  if [ "$(( ${#sockdir} + 15 ))" -gt 107 ]; then
    mp_log "error: socket directory $sockdir is too long for a Unix socket"
    return 1
  fi
  opts="-c listen_addresses= -c $(mp_sh_quote "unix_socket_directories=$sockdir") -p $(mp_sh_quote "$port")"
  for arg in "$@"; do
    case "$arg" in
      -*) opts+=" $(mp_sh_quote "$arg")" ;;
      *) opts+=" -c $(mp_sh_quote "$arg")" ;;
    esac
  done
  if ! { touch "$logfile" && mp_pg_chown "$logfile"; }; then
    return 1
  fi
  if ! mp_pg_run "$bindir/pg_ctl" start -D "$datadir" -l "$logfile" -w -t 120 \
    -o "$opts" >/dev/null; then
    mp_log "error: PostgreSQL did not start; the end of $logfile:"
    tail -n 30 "$logfile" >&2 || true
    return 1
  fi
}

# mp_pg_stop DATADIR: stops the server on DATADIR (fast shutdown: sessions
# are disconnected, then a clean checkpoint), if it runs. Falls back to an
# immediate shutdown if it does not stop within a minute.
mp_pg_stop() {
  local datadir bindir
  datadir="$(mp_abspath "$1")"
  mp_pg_is_running "$datadir" || return 0
  bindir="$(mp_pg_bindir)" || return 1
  if mp_pg_run "$bindir/pg_ctl" stop -D "$datadir" -m fast -w -t 60 >/dev/null; then
    return 0
  fi
  mp_log "warning: PostgreSQL on $datadir did not stop in time; immediate stop"
  mp_pg_run "$bindir/pg_ctl" stop -D "$datadir" -m immediate -w -t 30 >/dev/null
}

# mp_pg_pid_field DATADIR LINE: a line of DATADIR/postmaster.pid of a running
# server: 4 = port, 5 = socket directory.
mp_pg_pid_field() {
  sed -n "${2}p" "$(mp_abspath "$1")/postmaster.pid"
}

# mp_url_encode TEXT: TEXT percent-encoded for a URI query value.
mp_url_encode() {
  python3 -c 'import sys, urllib.parse
print(urllib.parse.quote(sys.argv[1], safe="/"))' "$1"
}
