#!/usr/bin/env bash
# tests/fuzz/run.sh BUILDDIR - runs every libFuzzer target of BUILDDIR
# (a -Dfuzz=true build with clang) for FUZZ_SECONDS (default 20) each, from
# a copy of its seed corpus (tests/fuzz/corpus/NAME; what it finds stays in
# the copy), and prints TAP: a target fails on a crash, a leak, a sanitizer
# report or a timeout. Run from the repository root (the targets read
# config/plan.json). Exit status: 0 when every target passed.
set -uo pipefail

BUILD=${1:?usage: tests/fuzz/run.sh BUILDDIR}
SECONDS_EACH=${FUZZ_SECONDS:-20}
TARGETS=(fuzz_event fuzz_plan fuzz_url fuzz_gzip fuzz_segment fuzz_alert_rule
	fuzz_spool_record)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/milepost-fuzz.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT

echo "1..${#TARGETS[@]}"
failed=0
n=0
for t in "${TARGETS[@]}"; do
	n=$((n + 1))
	mkdir -p "$WORK/$t"
	log="$WORK/$t.log"
	if "$BUILD/tests/fuzz/$t" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 \
		-timeout=10 -print_final_stats=1 "$WORK/$t" "tests/fuzz/corpus/${t#fuzz_}" \
		>"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "ok $n - $t: ${runs:-?} inputs in ${SECONDS_EACH} s"
	else
		failed=$((failed + 1))
		echo "not ok $n - $t"
		sed 's/^/# /' "$log" | tail -n 40
	fi
done
exit $((failed > 0))
