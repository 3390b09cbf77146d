#!/usr/bin/env bash
# tests/browser/run.sh - the browser tests: Debian's chromium, headless,
# driven by playwright-core (tests/browser/drive.mjs) against the daemon of
# MILEPOST_TEST_BUILDDIR and the PostgreSQL of MILEPOST_TEST_PG*. Run by
# tests/run.sh, which installs chromium, node and the npm packages first.
# Prints TAP on its standard output; exits non-zero on failure.
set -euo pipefail
cd "$(dirname "$0")"
export MILEPOST_BIN="${MILEPOST_TEST_BUILDDIR:?set MILEPOST_TEST_BUILDDIR}/server/milepost"
exec python3 test_snippet.py
