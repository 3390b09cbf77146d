// drive.mjs - Debian's chromium under playwright-core, driven one command
// at a time by a test program (tests/browser/browser.py) over stdin/stdout,
// one JSON object a line each way, so that the tests themselves (daemon,
// database, assertions) live with the Python harness.
//
// Commands: {"op": "open", "init": JS?, "locale"?, "width"?, "height"?} (a
// new context and page; init runs before every page's scripts), "goto"
// {url}, "eval" {js} (the value of an expression, awaited), "requests"
// (every URL the page asked for since it opened), "close". Like a person
// would: "fill" {selector, value}, "select" {selector, value}, "click"
// {selector}, "press" {selector, key}; "wait" {js, timeout?} (until the
// expression is truthy; its value), "viewport" {width, height},
// "screenshot" {path} (the full page). Each answers {"ok": true, "value":
// ...} or {"ok": false, "error": "..."}.
import { chromium } from 'playwright-core';
import readline from 'node:readline';

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let context, page, requests = [];

// Polls the expression with page.evaluate: waitForFunction would compile
// it in the page, which a Content-Security-Policy without 'unsafe-eval'
// (the dashboard's) forbids.
async function waitFor(js, timeout) {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await page.evaluate(js);
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + js);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function run(cmd) {
  switch (cmd.op) {
    case 'open':
      if (context) await context.close();
      context = await browser.newContext({
        locale: cmd.locale || undefined,
        viewport: cmd.width ? { width: cmd.width, height: cmd.height } : undefined,
      });
      if (cmd.init) await context.addInitScript(cmd.init);
      page = await context.newPage();
      requests = [];
      page.on('request', (r) => requests.push(r.url()));
      return null;
    case 'goto':
      await page.goto(cmd.url, { waitUntil: 'load' });
      return page.url();
    case 'eval':
      return await page.evaluate(cmd.js);
    case 'requests':
      return requests;
    case 'fill':
      await page.fill(cmd.selector, cmd.value);
      return null;
    case 'select':
      return await page.selectOption(cmd.selector, cmd.value);
    case 'click':
      await page.click(cmd.selector);
      return null;
    case 'press':
      await page.press(cmd.selector, cmd.key);
      return null;
    case 'wait':
      return await waitFor(cmd.js, cmd.timeout || 15000);
    case 'viewport':
      await page.setViewportSize({ width: cmd.width, height: cmd.height });
      return null;
    case 'screenshot':
      await page.screenshot({ path: cmd.path, fullPage: true });
      return cmd.path;
    case 'close':
      if (context) await context.close();
      context = null;
      return null;
    default:
      throw new Error('unknown op ' + cmd.op);
  }
}

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  let answer;
  try {
    answer = { ok: true, value: (await run(JSON.parse(line))) ?? null };
  } catch (e) {
    answer = { ok: false, error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
await browser.close();
