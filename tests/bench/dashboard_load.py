#!/usr/bin/env python3
"""One full load of the built-in dashboard, timed in Debian's chromium
(tests/browser/drive.mjs): for each panel whose numbers come from the
query API (funnel, attribution, targets, signals), a new page on
?site=SITE&tab=PANEL, the read key signed in, and the time from the
sign-in to the panel holding its answer, as a person waits for it.

Usage: dashboard_load.py BASE_URL SITE KEY ROUNDS
Prints one line per panel, "PANEL MS" (the median of ROUNDS loads after
one warm-up), then "total MS" (their sum: the panels of one full load),
and exits 1 when a panel shows an error instead of its answer."""

import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "browser"))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from test_snippet import Browser  # noqa: E402

PANELS = ("funnel", "attribution", "targets", "signals")
LOADED = ("(() => { const p = document.querySelector('.panel:not([hidden]) .body');"
          " return p && !p.hasAttribute('aria-busy') && !p.querySelector('.loading')"
          " && p.children.length > 0; })()")
ERROR = "!!document.querySelector('.panel:not([hidden]) .error, .panel:not([hidden]) [role=alert]')"
TIMEOUT_MS = 120000


def load(browser, base, site, key, panel):
    browser.do("open", locale="en-US", width=1280, height=800)
    browser.do("goto", url="%s/?site=%s&tab=%s" % (base, site, panel))
    browser.do("fill", selector="#key", value=key)
    start = time.monotonic()
    browser.do("click", selector="#key-form button[type=submit]")
    browser.do("wait", js=LOADED, timeout=TIMEOUT_MS)
    ms = (time.monotonic() - start) * 1000
    if browser.do("eval", js=ERROR):
        raise SystemExit("the %s panel shows an error" % panel)
    return ms


def main():
    base, site, key, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    browser = Browser()
    total = 0.0
    try:
        for panel in PANELS:
            load(browser, base, site, key, panel)
            ms = statistics.median(load(browser, base, site, key, panel) for _ in range(rounds))
            total += ms
            print("%s %.0f" % (panel, ms), flush=True)
    finally:
        browser.close()
    print("total %.0f" % total)


if __name__ == "__main__":
    main()
