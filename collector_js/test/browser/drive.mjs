#!/usr/bin/env node
// Drives the demo page in a real headless Chromium with real input events, for
// tests/test_browser_e2e.py (not part of `npm test`: it needs the whole stack).
//
//   node test/browser/drive.mjs '{"url": "https://127.0.0.1:PORT/", "user": "alice",
//        "mode": "human" | "bot", "seed": 1, "sentence": "...", "bench": false,
//        "chromium": "/usr/bin/chromium", "profile_dir": "/new/empty/dir"}'
//
// Prints one JSON object on stdout: every request the page made (URL, all headers
// including cookies, post body), every /api/ping answer the page received, the final
// #tier / data-tier / #notes, and (with "bench") the in-page cost of extractWindow.
//
// "human": seeded, jittered key holds and gaps (rollover, the odd typo fixed with
// Backspace, pauses between words), curved mouse paths with minimum-jerk speed
// profiles, wheel bursts with irregular timing, hesitation before clicks.
// "bot": keyboard.type with a fixed delay, straight constant-speed mouse moves at a
// fixed frame interval, instant clicks.  Each run is one fresh browser (new empty
// user-data-dir), so one run is one session with its own collector sid.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const VIEWPORT = { width: 1100, height: 1200 }; // the whole demo page fits: no hidden targets
const ANSWER_TIMEOUT_MS = 10000;

// -- seeded randomness -------------------------------------------------------------------

/** mulberry32: a small seeded PRNG returning floats in [0, 1). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random helpers over one PRNG: uniform, normal (Box-Muller), log-normal around a median. */
function randomness(seed) {
  const u = prng(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return {
    u,
    between: (lo, hi) => lo + (hi - lo) * u(),
    int: (lo, hi) => lo + Math.floor((hi - lo + 1) * u()),
    normal,
    lognormal: (median, sigma) => median * Math.exp(sigma * normal()),
  };
}

// -- scheduling: actions at absolute times, so CDP latency does not accumulate ------------

const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Runs `[t_ms, fn]` actions (t relative to now) in time order, each at its own time. */
async function runTimeline(actions) {
  actions.sort((a, b) => a[0] - b[0]);
  const t0 = performance.now();
  for (const [t, fn] of actions) {
    await sleep(t0 + t - performance.now());
    await fn();
  }
  return performance.now() - t0;
}

const keyName = (ch) => (ch === ' ' ? 'Space' : ch);

// -- a human ----------------------------------------------------------------------------

/**
 * Keystroke timeline for `text` typed by a person: log-normal holds and down-down gaps,
 * keys that overlap (rollover), longer gaps after spaces, the odd typo corrected.
 */
function humanKeys(page, rnd, text, { typoRate = 0.03 } = {}) {
  const strokes = [];
  for (const ch of text) {
    if (/[a-z]/.test(ch) && rnd.u() < typoRate) {
      strokes.push(String.fromCharCode(97 + ((ch.charCodeAt(0) - 97 + 1) % 26)), 'Backspace');
    }
    strokes.push(ch);
  }
  const actions = [];
  let t = 0;
  let prev = null; // {key, up}
  for (const key of strokes) {
    let gap = rnd.lognormal(key === 'Backspace' ? 230 : 140, 0.3);
    if (prev && prev.key === ' ' && rnd.u() < 0.12) gap += rnd.between(450, 900); // thinking
    t += gap;
    if (prev && prev.key === key) t = Math.max(t, prev.up + rnd.between(20, 50)); // no auto-repeat
    const hold = Math.min(Math.max(rnd.lognormal(92, 0.25), 35), 400);
    const name = keyName(key);
    actions.push([t, () => page.keyboard.down(name)], [t + hold, () => page.keyboard.up(name)]);
    prev = { key, up: t + hold };
  }
  return actions;
}

/** A minimum-jerk, Bezier-curved pointer path from `from` to `to` (absolute timeline). */
function humanPath(page, rnd, from, to, start = 0) {
  const dx = to.x - from.x;
  const dy = to.y - from.y;
  const dist = Math.hypot(dx, dy);
  const bow = () => rnd.between(-0.3, 0.3) * dist;
  const [nx, ny] = dist > 0 ? [-dy / dist, dx / dist] : [0, 0];
  const c1 = { x: from.x + dx * 0.3 + nx * bow(), y: from.y + dy * 0.3 + ny * bow() };
  const c2 = { x: from.x + dx * 0.7 + nx * bow(), y: from.y + dy * 0.7 + ny * bow() };
  const duration = (140 + 95 * Math.log2(1 + dist / 20)) * rnd.between(0.8, 1.25); // Fitts-like
  const actions = [];
  let t = 0;
  while (t < duration) {
    t = Math.min(duration, t + rnd.between(12, 22));
    const tau = t / duration;
    const s = tau * tau * tau * (10 - 15 * tau + 6 * tau * tau); // minimum-jerk progress
    const v = 1 - s;
    const x = v ** 3 * from.x + 3 * v * v * s * c1.x + 3 * v * s * s * c2.x + s ** 3 * to.x;
    const y = v ** 3 * from.y + 3 * v * v * s * c1.y + 3 * v * s * s * c2.y + s ** 3 * to.y;
    const jx = x + rnd.normal() * 0.6;
    const jy = y + rnd.normal() * 0.6;
    actions.push([start + t, () => page.mouse.move(jx, jy)]);
  }
  return [actions, start + duration];
}

/** Wheel bursts over the article: irregular intervals, notched deltas, a direction change. */
function humanWheel(page, rnd, bursts) {
  const actions = [];
  let t = 0;
  for (let b = 0; b < bursts; b++) {
    const dir = b === bursts - 1 ? -1 : 1;
    const n = rnd.int(4, 8);
    for (let i = 0; i < n; i++) {
      t += Math.min(Math.max(rnd.lognormal(60, 0.6), 10), 280); // notches come unevenly
      const dy = dir * (rnd.u() < 0.2 ? 200 : 100);
      actions.push([t, () => page.mouse.wheel(0, dy)]);
    }
    t += rnd.between(380, 800);
  }
  return [actions, t];
}

/** A point inside the element's visible part (its layout shifts as the verdict line changes). */
async function target(page, selector, rnd) {
  const box = await page.locator(selector).boundingBox();
  if (!box) throw new Error(`no box for ${selector}`);
  const bottom = Math.min(box.y + box.height, VIEWPORT.height);
  if (bottom <= box.y) throw new Error(`${selector} is below the viewport`);
  return {
    x: box.x + box.width * rnd.between(0.3, 0.7),
    y: box.y + (bottom - box.y) * rnd.between(0.35, 0.65),
  };
}

class Human {
  constructor(page, seed) {
    this.page = page;
    this.rnd = randomness(seed);
    this.at = { x: 500 + 100 * this.rnd.u(), y: 450 };
  }

  async moveTo(selector) {
    const to = await target(this.page, selector, this.rnd);
    const [actions] = humanPath(this.page, this.rnd, this.at, to);
    await runTimeline(actions);
    this.at = to;
  }

  async click(selector) {
    await this.moveTo(selector);
    // The verdict line above may have re-wrapped during the move: re-aim, as people do.
    const box = await this.page.locator(selector).boundingBox();
    const { x, y } = this.at;
    if (!box || x < box.x || x > box.x + box.width || y < box.y || y > box.y + box.height) {
      await this.moveTo(selector);
    }
    await sleep(this.rnd.lognormal(220, 0.35)); // hesitation before the click
    await this.page.mouse.down();
    await sleep(Math.min(Math.max(this.rnd.lognormal(95, 0.25), 45), 250));
    await this.page.mouse.up();
  }

  async type(text, opts) {
    await runTimeline(humanKeys(this.page, this.rnd, text, opts));
  }

  async scroll(selector, bursts) {
    await this.moveTo(selector);
    const [actions] = humanWheel(this.page, this.rnd, bursts);
    await runTimeline(actions);
  }

  /** Wander to a random point of the page: mouse activity without a click. */
  async wander() {
    const to = { x: this.rnd.between(120, 900), y: this.rnd.between(150, 700) };
    const [actions] = humanPath(this.page, this.rnd, this.at, to);
    await runTimeline(actions);
    this.at = to;
  }
}

async function humanSession(page, { user, sentence, seed }, answered) {
  const h = new Human(page, seed);
  // The name is set programmatically before any input: demo.js sends the field's
  // current value as x-user-id with every activity ping, and the sidecar binds a
  // collector session to the first identity it sees (a half-typed name would own it).
  await page.fill('#user', user);
  await h.click('#password');
  await h.type('hunter two', { typoRate: 0 });
  await answered(() => h.click('#login'));
  await h.scroll('#article', 2);
  await h.click('#notes');
  await h.type(sentence);
  await answered(() => h.click('#ping'));
  await h.wander();
  await answered(() => h.click('#ping'));
}

// -- a bot ------------------------------------------------------------------------------

/** Straight line at constant speed: fixed step and fixed frame interval. */
async function botMove(page, from, to, stepPx = 12, frameMs = 16) {
  const dist = Math.hypot(to.x - from.x, to.y - from.y);
  const n = Math.max(1, Math.round(dist / stepPx));
  const actions = [];
  for (let i = 1; i <= n; i++) {
    const x = from.x + ((to.x - from.x) * i) / n;
    const y = from.y + ((to.y - from.y) * i) / n;
    actions.push([i * frameMs, () => page.mouse.move(x, y)]);
  }
  await runTimeline(actions);
}

async function botSession(page, { user, sentence }, answered) {
  const box = async (sel) => {
    const b = await page.locator(sel).boundingBox();
    return { x: b.x + b.width / 2, y: b.y + b.height / 2 };
  };
  let at = { x: 10, y: 10 };
  const go = async (sel) => {
    const to = await box(sel);
    await botMove(page, at, to);
    at = to;
  };
  const click = async (sel) => {
    await go(sel);
    await page.mouse.down();
    await page.mouse.up();
  };
  await page.fill('#user', user);
  await click('#password');
  await page.keyboard.type('hunter two', { delay: 40 });
  await answered(() => click('#login'));
  await go('#article');
  for (let i = 0; i < 8; i++) {
    await page.mouse.wheel(0, 100);
    await sleep(50);
  }
  await click('#notes');
  await page.keyboard.type(sentence, { delay: 40 });
  for (let i = 0; i < 3; i++) await answered(() => click('#ping'));
}

// -- measuring extraction in the page ---------------------------------------------------

/** µs per extractWindow call over 1,000 synthetic events (mixed modalities): median of batches. */
function benchInPage({ seed, samples, batch }) {
  return (async () => {
    const { extractWindow } = await import('/collector/bioshard-collector.min.js');
    let a = seed >>> 0;
    const u = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), a | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const ev = [];
    let t = 0;
    // 1,000 events: 300 key events (150 presses), 550 mouse events, 150 wheel events
    for (let i = 0; i < 150; i++) {
      t += 120 + 100 * u();
      const code = `Key${String.fromCharCode(65 + (i % 26))}`;
      ev.push({ type: 'keydown', t, code, bs: u() < 0.03 }, { type: 'keyup', t: t + 60 + 60 * u(), code });
    }
    let x = 100;
    let y = 100;
    for (let i = 0; i < 550; i++) {
      t += 8 + 10 * u();
      if (i % 50 === 49) {
        ev.push({ type: i % 100 === 49 ? 'mousedown' : 'mouseup', t, button: 0 });
        continue;
      }
      x += 6 * u() - 2;
      y += 6 * u() - 3;
      ev.push({ type: 'mousemove', t, x, y });
    }
    for (let i = 0; i < 150; i++) {
      t += 30 + 60 * u() + (i % 6 === 5 ? 400 : 0);
      ev.push({ type: 'wheel', t, dx: 0, dy: u() < 0.9 ? 100 : -100 });
    }
    ev.sort((p, q) => p.t - q.t);
    for (let i = 0; i < 20; i++) extractWindow(ev); // warm up the JIT
    // performance.now() is coarsened (100 µs without cross-origin isolation):
    // time batches of calls and divide.
    const us = [];
    for (let s = 0; s < samples; s++) {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) extractWindow(ev);
      us.push(((performance.now() - t0) * 1000) / batch);
    }
    us.sort((p, q) => p - q);
    return {
      events: ev.length,
      calls: samples * batch,
      median_us: us[us.length >> 1],
      min_us: us[0],
      max_us: us[us.length - 1],
    };
  })();
}

// -- main -------------------------------------------------------------------------------

async function main() {
  const opts = JSON.parse(process.argv[2] || '{}');
  const { url, user, mode = 'human', seed = 1, sentence = '', bench = false } = opts;
  const executablePath = opts.chromium || '/usr/bin/chromium';
  // A new, empty profile per run: the caller's directory, else a temporary one.
  const userDataDir = opts.profile_dir || mkdtempSync(join(tmpdir(), 'bioshard-chromium-'));
  const t0 = performance.now();
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreHTTPSErrors: true,
    viewport: VIEWPORT,
    timeout: 30000,
  });
  const result = { mode, user, seed, requests: [], answers: [] };
  try {
    const launchedMs = performance.now() - t0;
    const page = context.pages()[0] || (await context.newPage());
    const pending = [];
    // Headers are read as requests happen (allHeaders() includes the cookies sent).
    page.on('request', (req) => {
      pending.push(req.allHeaders().then(
        (headers) => ({ url: req.url(), method: req.method(), headers, post: req.postData() }),
        (err) => ({ url: req.url(), method: req.method(), error: String(err) })));
    });
    page.on('response', (res) => {
      if (new URL(res.url()).pathname === '/api/ping') {
        pending.push(res.json().then((body) => ({ answer: body }), () => ({ answer: null })));
      }
    });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForFunction(() => window.bioshardDemo !== undefined);

    /** Runs `act`, then waits until the page has received one more /api/ping answer. */
    const answered = async (act) => {
      const before = await page.evaluate(() => window.bioshardDemo.pings);
      await act();
      await page.waitForFunction((n) => window.bioshardDemo.pings > n, before, { timeout: ANSWER_TIMEOUT_MS });
    };
    const t1 = performance.now();
    await (mode === 'bot' ? botSession : humanSession)(page, { user, sentence, seed }, answered);
    const drivenMs = performance.now() - t1;

    // Read at once, right after the last click's answer (an activity ping may follow).
    Object.assign(result, await page.evaluate(() => ({
      tier_text: document.getElementById('tier').textContent,
      tier: document.getElementById('tier').dataset.tier,
      score: document.getElementById('score').textContent,
      last: window.bioshardDemo.last,
      notes: document.getElementById('notes').value,
      pings: window.bioshardDemo.pings,
    })));
    if (bench) result.bench = await page.evaluate(benchInPage, { seed, samples: 15, batch: 40 });
    result.timings = { launch_ms: launchedMs, drive_ms: drivenMs };
    await page.goto('about:blank'); // no more activity pings: every request is now known
    for (const item of await Promise.all(pending)) {
      if ('answer' in item) result.answers.push(item.answer);
      else result.requests.push(item);
    }
  } finally {
    await context.close();
    if (!opts.profile_dir) rmSync(userDataDir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((err) => {
  process.stderr.write(`drive.mjs: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
