#!/usr/bin/env bash
# tests/browser/run.sh - the tests that need node and a browser: milepost.js
# and the built-in dashboard in Debian's chromium (headless, driven by
# playwright-core through drive.mjs) and Segment's own libraries against
# the collector, with the daemon of MILEPOST_TEST_BUILDDIR and the
# PostgreSQL of MILEPOST_TEST_PG*. The dashboard's screenshots go to
# MILEPOST_TEST_BUILDDIR/browser-screenshots/.
# Run by tests/run.sh, which installs chromium, node and the npm packages
# first. Prints the programs' TAP as one stream on its standard output
# (numbered anew, one plan); exits non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")"
export MILEPOST_BIN="${MILEPOST_TEST_BUILDDIR:?set MILEPOST_TEST_BUILDDIR}/server/milepost"
status=0
: >tap.out
for t in test_snippet.py test_segment_clients.py test_dashboard.py; do
  echo "# $t" >&2
  python3 "$t" >"tap.$t.out" || status=1
  cat "tap.$t.out" >>tap.out
  rm -f "tap.$t.out"
done
python3 - tap.out <<'PY' || status=1
import re, sys
lines = open(sys.argv[1], encoding="utf-8", errors="replace").read().splitlines()
plans = [int(m.group(1)) for m in (re.match(r"^1\.\.(\d+)", l) for l in lines) if m]
tests = [l for l in lines if re.match(r"^(not )?ok\b", l)]
print("1..%d" % len(tests))
n = 0
for l in lines:
    m = re.match(r"^(not ok|ok)(?:\s+\d+)?(.*)$", l)
    if m:
        n += 1
        print("%s %d%s" % (m.group(1), n, m.group(2)))
    elif not re.match(r"^1\.\.\d+", l):
        print(l)
# A program that ran fewer tests than it planned (a crash) fails the run.
sys.exit(0 if len(tests) == sum(plans) else 1)
PY
rm -f tap.out
exit "$status"
