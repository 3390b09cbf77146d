#!/usr/bin/env bash
#
# tests/run.sh - THE test command: `tests/run.sh` from anywhere.
#
# On a fresh Debian 12 machine as root it installs what it needs (apt-get);
# as another user the packages must already be installed. It then
#   1. builds Milepost twice: build/test (debug) and build/asan (debug with
#      AddressSanitizer and UndefinedBehaviorSanitizer), warnings as errors;
#   2. starts one throwaway PostgreSQL cluster in a temporary directory
#      (stopped and removed at exit, also on failure or Ctrl-C) and exports
#      MILEPOST_TEST_PGHOST (socket directory), MILEPOST_TEST_PGPORT,
#      MILEPOST_TEST_PGUSER, MILEPOST_TEST_PGBIN (initdb, pg_ctl, postgres)
#      and MILEPOST_TEST_PGRUNAS (the OS user to run those as; empty unless
#      root);
#   3. runs the `unit` and `integration` meson suites in both builds;
#   4. counts the TAP results of every test program (tests/lib/tap_count.py).
# The last line printed is `N passed, N failed` (`, N skipped` when some
# were). The exit status is 0 only if something passed and nothing failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=tests/lib/pg.sh
. "$ROOT/tests/lib/pg.sh"

BUILDS=(test asan)
SUMMARY_PRINTED=0
TEST_TMP=""
PG_DATA=""
PG_SOCK=""

CHILD_PID=""

# run_child CMD...: runs CMD in the background and waits for it, so that a
# signal to this script stops CMD at once (on_exit sends it SIGTERM) instead
# of waiting for it to finish.
run_child() {
  local status=0
  "$@" &
  CHILD_PID=$!
  wait "$CHILD_PID" || status=$?
  CHILD_PID=""
  return "$status"
}

# shellcheck disable=SC2317 # (called by the trap)
stop_child() {
  local pid="$CHILD_PID" waited=0
  [ -n "$pid" ] || return 0
  CHILD_PID=""
  kill -TERM "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 300 ]; do
    sleep 0.1
    waited=$((waited + 1))
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  if [ -n "$PG_DATA" ]; then
    mp_pg_stop "$PG_DATA" || true
    PG_DATA=""
  fi
  if [ -n "$PG_SOCK" ]; then
    mp_pg_remove_sockdir "$PG_SOCK" || true
    PG_SOCK=""
  fi
  if [ -n "$TEST_TMP" ]; then
    rm -rf -- "$TEST_TMP" || true
    TEST_TMP=""
  fi
}

# On any early exit (failed install, failed build, Ctrl-C, a bug here), the
# last line still says that something failed.
# shellcheck disable=SC2317 # (called by the trap)
on_exit() {
  local status=$?
  trap - EXIT INT TERM HUP
  stop_child
  cleanup
  if [ "$SUMMARY_PRINTED" -eq 0 ]; then
    [ "$status" -ne 0 ] || status=1
    echo "0 passed, 1 failed"
  fi
  exit "$status"
}
trap on_exit EXIT
trap 'echo "interrupted" >&2; exit 130' INT
trap 'echo "terminated" >&2; exit 143' TERM HUP

section() {
  printf '\n==> %s\n' "$*"
}

install_packages() {
  local pkgs
  mapfile -t pkgs < <(mp_build_packages)
  # prometheus brings promtool, which lints the GET /metrics exposition
  # (tests/integration/test_metrics.py); openssl makes the TLS test's
  # certificate.
  mp_install_packages "${pkgs[@]}" prometheus openssl
}

# build NAME MESON-OPTION...: configures (or reconfigures) and builds
# build/NAME; the output goes to build/NAME.log and is printed on failure.
build() {
  local dir="build/$1" log="build/$1.log"
  shift
  mkdir -p build
  section "Building $dir ($*)"
  {
    if [ -f "$dir/meson-private/coredata.dat" ]; then
      meson setup --reconfigure "$@" "$dir"
    else
      rm -rf -- "$dir"
      meson setup "$@" "$dir"
    fi && ninja -C "$dir"
  } >"$log" 2>&1 || {
    cat "$log"
    echo "BUILD FAILED: $dir (log: $log)"
    return 1
  }
  echo "built $dir (log: $log)"
}

build_all() {
  build test --werror -Dbuildtype=debug
  build asan --werror -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debug
  # What the container images and run-local.sh ship: -O3 finds warnings
  # (maybe-uninitialized) that -O0 does not. Built, not tested: the two
  # builds above run the suites.
  build release --werror -Dbuildtype=release -Dtests=false
}

start_postgres() {
  section "Starting a throwaway PostgreSQL"
  TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/milepost-test.XXXXXX")"
  mp_pg_chown "$TEST_TMP"
  if ! mp_pg_can_reach "$TEST_TMP"; then
    # A private TMPDIR that the postgres user cannot reach: use /tmp.
    rm -rf -- "$TEST_TMP"
    TEST_TMP="$(mktemp -d /tmp/milepost-test.XXXXXX)"
    mp_pg_chown "$TEST_TMP"
  fi
  mp_pg_init "$TEST_TMP/pg" --no-sync
  PG_DATA="$TEST_TMP/pg"
  local port
  port="$(mp_pg_free_port)"
  PG_SOCK="$(mp_pg_sockdir "$TEST_TMP/sock")"
  # Throwaway data: durability off for speed (never for the benchmark).
  mp_pg_start "$PG_DATA" "$PG_SOCK" "$port" \
    fsync=off synchronous_commit=off full_page_writes=off \
    max_wal_size=1GB shared_buffers=128MB max_connections=200

  export MILEPOST_TEST_PGHOST="$PG_SOCK"
  export MILEPOST_TEST_PGPORT="$port"
  export MILEPOST_TEST_PGUSER="$MP_PG_SUPERUSER"
  MILEPOST_TEST_PGBIN="$(mp_pg_bindir)"
  export MILEPOST_TEST_PGBIN
  MILEPOST_TEST_PGRUNAS="$(mp_pg_runas)"
  export MILEPOST_TEST_PGRUNAS
  echo "PostgreSQL $("$MILEPOST_TEST_PGBIN/postgres" --version | awk '{print $3}')" \
    "on $MILEPOST_TEST_PGHOST/.s.PGSQL.$MILEPOST_TEST_PGPORT" \
    "(superuser $MILEPOST_TEST_PGUSER, log $(mp_pg_logfile "$PG_DATA"))"
}

# run_suites NAME: runs the unit and integration suites of build/NAME. Leaves
# build/NAME/meson-logs/testlog.json (none if no test is defined) and adds
# to EXTRA_FAILED when meson failed without writing one.
EXTRA_FAILED=0
run_suites() {
  local name="$1" dir="build/$1" status=0
  local log="$dir/meson-logs/testlog.json"
  local env=(CMOCKA_MESSAGE_OUTPUT=TAP)
  local opts=()
  if [ "$name" = asan ]; then
    env+=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1)
    opts+=(--timeout-multiplier 3)
  fi
  section "Testing $dir"
  # meson 1.0 leaves an old testlog.json when it finds no test to run.
  rm -f -- "$log"
  run_child env "${env[@]}" meson test -C "$dir" --suite unit --suite integration \
    --print-errorlogs --num-processes 2 "${opts[@]}" || status=$?
  if [ ! -f "$log" ]; then
    if [ "$status" -ne 0 ]; then
      echo "meson test failed in $dir (status $status) without running tests"
      EXTRA_FAILED=$((EXTRA_FAILED + 1))
    else
      echo "no unit or integration test defined in $dir"
    fi
  fi
}

# tap_testlog NAME OUT STATUS LOG: the TAP in file OUT of a program that
# exited with STATUS, written as one test program of meson's testlog.json
# format into LOG, and counted with the others.
tap_testlog() {
  python3 - "$1" "$2" "$3" >"$4" <<'EOF'
import json, sys
with open(sys.argv[2], encoding="utf-8", errors="replace") as f:
    stdout = f.read()
print(json.dumps({"name": sys.argv[1], "stdout": stdout,
                  "result": "OK" if sys.argv[3] == "0" else "FAIL",
                  "returncode": int(sys.argv[3])}))
EOF
  TESTLOGS+=("$4")
}

# Browser tests (a later issue): tests/browser/run.sh, if it exists, runs
# with the same PostgreSQL and build/test, prints TAP on its standard output
# and exits non-zero on failure. Its results are counted like a test program
# of meson's (build/browser/testlog.json, same format).
run_browser_tests() {
  [ -f tests/browser/run.sh ] || return 0
  section "Browser tests"
  mp_install_packages chromium chromium-driver
  if ! command -v npm >/dev/null 2>&1; then
    mp_install_packages nodejs npm
  fi
  if [ -f tests/browser/package.json ]; then
    if [ -f tests/browser/package-lock.json ]; then
      (cd tests/browser && npm ci --no-audit --no-fund)
    else
      (cd tests/browser && npm install --no-audit --no-fund)
    fi
  fi
  mkdir -p build/browser
  local out=build/browser/stdout.txt status=0
  rm -f build/browser/testlog.json
  MILEPOST_TEST_BUILDDIR="$ROOT/build/test" bash tests/browser/run.sh |
    tee "$out" || status=$?
  tap_testlog browser "$out" "$status" build/browser/testlog.json
}

# Fuzzing: every libFuzzer target (tests/fuzz) for FUZZ_SECONDS (20) each,
# built with clang into build/fuzz; counted like a test program of meson's
# (build/fuzz/testlog.json).
run_fuzz_tests() {
  section "Fuzzing (${FUZZ_SECONDS:-20} s per target)"
  mp_install_packages clang libclang-rt-14-dev
  local out=build/fuzz-tap.txt status=0
  CC=clang build fuzz -Dfuzz=true -Dtests=false -Db_lundef=false ||
    status=$?
  if [ "$status" -eq 0 ]; then
    tests/fuzz/run.sh build/fuzz | tee "$out" || status=$?
  else
    echo "not ok 1 - the fuzz build failed" >"$out"
  fi
  mkdir -p build/fuzz
  tap_testlog fuzz "$out" "$status" build/fuzz/testlog.json
}

section "Packages"
install_packages
build_all
start_postgres

TESTLOGS=()
for name in "${BUILDS[@]}"; do
  run_suites "$name"
  TESTLOGS+=("build/$name/meson-logs/testlog.json")
done
run_browser_tests
run_fuzz_tests

# Stop PostgreSQL now, so that nothing is printed after the total.
cleanup

section "Results"
SUMMARY_PRINTED=1
status=0
python3 tests/lib/tap_count.py --extra-failed "$EXTRA_FAILED" "${TESTLOGS[@]}" ||
  status=$?
if [ "$status" -gt 1 ]; then
  # tap_count.py itself failed and printed no total.
  echo "0 passed, 1 failed"
fi
exit "$status"
