// Drives Firefox for the e2e tests: puppeteer-core over WebDriver BiDi (there is no
// geckodriver on Debian). The Python side (tests/e2e/engines.py) starts this script and talks
// to it in JSON lines: one request per stdin line `{"id", "cmd", ...}`, one answer per stdout
// line `{"id", "ok": true, "value"}` or `{"id", "ok": false, "error"}`.
//
// argv[2] is a JSON object: {executablePath, prefs, args}. The first line out is
// `{"ready": true, "version"}` once the browser runs (or `{"ready": false, "error"}`).
import { createInterface } from "node:readline";

import puppeteer from "puppeteer-core";

const config = JSON.parse(process.argv[2] ?? "{}");
const pages = new Map();
const logs = new Map();
let nextPage = 1;
let browser;

function send(message) {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function page(id) {
  const found = pages.get(id);
  if (!found) throw new Error(`no page ${id}`);
  return found;
}

const commands = {
  /** A new tab at `url`; its console lines and uncaught errors are kept. */
  async open({ url }) {
    const opened = await browser.newPage();
    const id = nextPage++;
    const log = { console: [], errors: [] };
    pages.set(id, opened);
    logs.set(id, log);
    opened.on("console", (m) => log.console.push(`${m.type()}: ${m.text()}`));
    opened.on("pageerror", (e) => log.errors.push(String(e?.message ?? e)));
    await opened.goto(url);
    return id;
  },
  /** The value of a JavaScript expression (an async one is awaited), as JSON. */
  async eval({ page: id, js }) {
    return await page(id).evaluate(js);
  },
  /** Waits until a JavaScript expression is truthy; the ms it took. */
  async wait({ page: id, js, timeout }) {
    const started = performance.now();
    await page(id).waitForFunction(js, { timeout: timeout ?? 20000, polling: 50 });
    return performance.now() - started;
  },
  /** A real click (input actions, so the page gets a user activation). */
  async click({ page: id, selector }) {
    await page(id).click(selector);
    return null;
  },
  async log({ page: id }) {
    return logs.get(id) ?? { console: [], errors: [] };
  },
  async closePage({ page: id }) {
    await page(id).close();
    pages.delete(id);
    return null;
  },
  async version() {
    return await browser.version();
  },
};

async function main() {
  try {
    browser = await puppeteer.launch({
      browser: "firefox",
      executablePath: config.executablePath,
      headless: true,
      extraPrefsFirefox: config.prefs ?? {},
      args: config.args ?? [],
      // Puppeteer waits 30 s by default; Firefox starts in a few here.
      timeout: 60000,
    });
  } catch (err) {
    send({ ready: false, error: String(err?.stack ?? err) });
    process.exit(1);
  }
  send({ ready: true, version: await browser.version() });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) continue;
    const request = JSON.parse(line);
    // "quit", or stdin closed (the test process died): close the browser, leave nothing.
    if (request.cmd === "quit") break;
    const handler = commands[request.cmd];
    // Each request runs on its own: a long wait does not hold the others up.
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${request.cmd}`);
        return handler(request);
      })
      .then(
        (value) => send({ id: request.id, ok: true, value: value ?? null }),
        (err) => send({ id: request.id, ok: false, error: String(err?.message ?? err) }),
      );
  }
  await browser.close().catch(() => undefined);
  process.exit(0);
}

void main();
