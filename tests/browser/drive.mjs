// drive.mjs - Debian's chromium under playwright-core, driven one command
// at a time by a test program (tests/browser/browser.py) over stdin/stdout,
// one JSON object a line each way, so that the tests themselves (daemon,
// database, assertions) live with the Python harness.
//
// Commands: {"op": "open", "init": JS?} (a new context and page; init runs
// before every page's scripts), "goto" {url}, "eval" {js} (the value of an
// expression, awaited), "requests" (every URL the page asked for since it
// opened), "close". Each answers {"ok": true, "value": ...} or
// {"ok": false, "error": "..."}.
import { chromium } from 'playwright-core';
import readline from 'node:readline';

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let context, page, requests = [];

async function run(cmd) {
  switch (cmd.op) {
    case 'open':
      if (context) await context.close();
      context = await browser.newContext();
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
