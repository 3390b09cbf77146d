#!/usr/bin/env python3
"""Count TAP results in meson's testlog.json files.

Usage: tap_count.py [--extra-failed N] TESTLOG.json [TESTLOG.json ...]

Each TESTLOG.json is what `meson test` writes to BUILD/meson-logs/testlog.json:
one JSON object per line, one per test program, with (among others) the
fields "name", "result" (OK, FAIL, SKIP, EXPECTEDFAIL, UNEXPECTEDPASS,
TIMEOUT, ERROR, INTERRUPT), "returncode" and "stdout".

For every test program the TAP lines of its standard output are counted:
  - `ok ...`                         1 passed
  - `ok ... # SKIP` / `not ok ... # SKIP`   1 skipped
  - `not ok ...`                     1 failed
  - `not ok ... # TODO`              not counted (known to fail)
  - `1..0 # SKIP reason`             1 skipped (the whole program skipped)
Only lines starting in column 0 count (indented lines are TAP14 subtests).

A program that did not end well (meson says FAIL, TIMEOUT, ERROR, INTERRUPT
or UNEXPECTEDPASS, or it printed "Bail out!", or it ran fewer or more tests
than its plan said) but printed no counted `not ok` line is counted as 1
failed: a crash, a sanitizer abort, a timeout, an early exit. A program that
printed no TAP at all counts as 1 passed (OK), 1 skipped (SKIP) or 1 failed.
A program that meson reports as EXPECTEDFAIL counts as 1 passed.

A missing TESTLOG.json means no test ran for that build (meson says "No
suitable tests defined" and writes no log when a suite is empty).

Prints one summary line per log, the failed programs with their failing TAP
lines, and, last, `N passed, N failed` followed by `, N skipped` when N > 0.
Exit status: 0 when something passed and nothing failed, 1 otherwise, 2 on
bad usage.
"""

import json
import re
import sys

TEST_LINE = re.compile(r"^(not ok|ok)(?:\s|$)(.*)$")
PLAN_LINE = re.compile(r"^1\.\.(\d+)\s*(?:#\s*(.*))?$")
BAD_RESULTS = {"FAIL", "TIMEOUT", "ERROR", "INTERRUPT", "UNEXPECTEDPASS"}


def directive(rest):
    """Return 'skip', 'todo' or None for the text after ok/not ok."""
    # The directive follows the first '#' that is not escaped as '\#'.
    match = re.search(r"(?<!\\)#\s*(.*)$", rest)
    if not match:
        return None
    text = match.group(1)
    if re.match(r"skip", text, re.IGNORECASE):
        return "skip"
    if re.match(r"todo\b", text, re.IGNORECASE):
        return "todo"
    return None


class Program:
    """The counts of one test program."""

    def __init__(self, name, result, stdout):
        self.name = name
        self.result = result
        self.passed = 0
        self.failed = 0
        self.skipped = 0
        self.failures = []  # the `not ok` lines, or why the program failed
        self.count(stdout)

    def count(self, stdout):
        planned = None
        plan_skip = False
        results = 0
        bailed = None
        for line in stdout.splitlines():
            line = line.rstrip("\r")
            match = TEST_LINE.match(line)
            if match:
                results += 1
                kind = directive(match.group(2))
                if kind == "skip":
                    self.skipped += 1
                elif match.group(1) == "ok":
                    self.passed += 1  # a passing TODO is a pass too
                elif kind != "todo":
                    self.failed += 1
                    self.failures.append(line)
                continue
            match = PLAN_LINE.match(line)
            if match:
                # cmocka prints one plan per test group: add them up.
                planned = (planned or 0) + int(match.group(1))
                if int(match.group(1)) == 0:
                    plan_skip = True
                continue
            if line.startswith("Bail out!"):
                bailed = line

        if self.result == "EXPECTEDFAIL":
            # should_fail: true: failing is what was expected.
            self.passed, self.failed, self.skipped = 1, 0, 0
            self.failures = []
            return

        if plan_skip and results == 0:
            self.skipped += 1

        problem = None
        if self.result in BAD_RESULTS:
            problem = "meson result " + self.result
        elif bailed is not None:
            problem = bailed
        elif planned is not None and planned != results:
            problem = "planned %d tests, ran %d" % (planned, results)

        if problem is not None:
            if self.failed == 0:
                self.failed = 1
            self.failures.append("(" + problem + ")")
            return

        if results == 0 and not plan_skip:
            # No TAP at all: the exit status is the only result.
            if self.result == "SKIP":
                self.skipped += 1
            elif self.result == "OK":
                self.passed += 1


def read_log(path):
    programs = []
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    with handle:
        for number, text in enumerate(handle, 1):
            text = text.strip()
            if not text:
                continue
            try:
                entry = json.loads(text)
            except ValueError as err:
                sys.stderr.write("%s:%d: not JSON: %s\n" % (path, number, err))
                programs.append(Program("%s:%d" % (path, number), "ERROR", ""))
                continue
            programs.append(Program(str(entry.get("name", "?")),
                                    str(entry.get("result", "ERROR")),
                                    entry.get("stdout") or ""))
    return programs


def plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def summary(passed, failed, skipped):
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    return line


def main(argv):
    extra_failed = 0
    paths = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--extra-failed" and args:
            extra_failed = int(args.pop(0))
        elif arg.startswith("--extra-failed="):
            extra_failed = int(arg.split("=", 1)[1])
        elif arg in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        elif arg.startswith("-"):
            sys.stderr.write("tap_count.py: unknown option %s\n" % arg)
            return 2
        else:
            paths.append(arg)

    total = [0, 0, 0]
    for path in paths:
        programs = read_log(path)
        if programs is None:
            print("%s: no test log (no test ran)" % path)
            continue
        counts = [sum(p.passed for p in programs),
                  sum(p.failed for p in programs),
                  sum(p.skipped for p in programs)]
        print("%s: %s in %s" % (path, summary(*counts),
                                plural(len(programs), "test program")))
        for program in programs:
            if program.failed:
                print("  FAILED %s [%s]" % (program.name, program.result))
                for line in program.failures[:20]:
                    print("    " + line)
                if len(program.failures) > 20:
                    print("    ... %d more" % (len(program.failures) - 20))
        for i in range(3):
            total[i] += counts[i]

    if extra_failed:
        print("%s outside the test programs" % plural(extra_failed, "failure"))
        total[1] += extra_failed

    print(summary(*total))
    passed, failed = total[0], total[1]
    return 0 if passed > 0 and failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
