// Features known by construction, cleaning, outliers, clipping, rounding, windows.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { extractWindow, robust, roundTo, windowsFromEvents, deviceOf } from '../src/extract.js';
import { FEATURES } from '../src/features.js';

/** n keystrokes: down every `dd` ms, each held `hold` ms; every `bsEvery`-th is Backspace. */
function typing(n, { hold = 100, dd = 200, t0 = 0, bsEvery = 0, holds } = {}) {
  const ev = [];
  for (let i = 0; i < n; i++) {
    const t = t0 + i * dd;
    const code = `K${i}`;
    ev.push({ type: 'keydown', t, code, ...(bsEvery && i % bsEvery === 0 ? { bs: true } : {}) });
    ev.push({ type: 'keyup', t: t + (holds ? holds[i] : hold), code });
  }
  return ev.sort((a, b) => a.t - b.t);
}

/** Mouse samples every `dt` ms at (x0 + i*sx, y0 + i*sy). */
function line(n, { sx = 3, sy = 4, dt = 10, t0 = 0, x0 = 0, y0 = 0 } = {}) {
  return Array.from({ length: n }, (_, i) => ({ type: 'mousemove', t: t0 + i * dt, x: x0 + i * sx, y: y0 + i * sy }));
}

/** Mouse samples on a circle of radius r, `step` radians apart. */
function arc(n, r, step = 0.1, dt = 10) {
  return Array.from({ length: n }, (_, i) => ({
    type: 'mousemove', t: i * dt, x: r * Math.cos(i * step), y: r * Math.sin(i * step),
  }));
}

/** Wheel bursts: `bursts` x `per` notches of `dy` px, `gap` ms between notches, 1 s between bursts. */
function wheel(bursts, per, { dy = 100, gap = 50, flip = false } = {}) {
  const ev = [];
  for (let b = 0; b < bursts; b++) {
    for (let i = 0; i < per; i++) {
      ev.push({ type: 'wheel', t: b * 1000 + i * gap, dx: 0, dy: flip && b % 2 ? -dy : dy });
    }
  }
  return ev;
}

/** One straight swipe of `len` px over `dur` ms (5 samples), pressure p, contact w x h. */
function swipe(t0, id, { len = 200, dur = 100, p = 0.5, w = 10, h = 20, nt = 1 } = {}) {
  const ev = [{ type: 'touchstart', t: t0, id, x: 0, y: 0, pressure: p, w, h, nt }];
  for (let i = 1; i < 4; i++) ev.push({ type: 'touchmove', t: t0 + (i * dur) / 4, id, x: (i * len) / 4, y: 0, pressure: p, w, h, nt });
  ev.push({ type: 'touchend', t: t0 + dur, id, x: len, y: 0, nt: nt - 1 });
  return ev;
}

const f = (events, mod) => extractWindow(events)[mod].f;

const cases = [
  ['a 100 ms hold is 100 ms', () => f(typing(20), 'keys').hold_mean, 100],
  ['constant holds have std 0', () => f(typing(20), 'keys').hold_std, 0],
  ['down every 200 ms is dd 200', () => f(typing(20), 'keys').dd_mean, 200],
  ['up to next down is dd minus hold', () => f(typing(20, { hold: 80 }), 'keys').ud_mean, 120],
  ['overlapping keys give a negative ud', () => f(typing(20, { hold: 150, dd: 100 }), 'keys').ud_mean, -50],
  ['dd 200 ms is 5 keys/s', () => f(typing(20), 'keys').rate, 5],
  ['no gap above 500 ms is pause_ratio 0', () => f(typing(20), 'keys').pause_ratio, 0],
  ['gaps of 600 ms are all pauses', () => f(typing(20, { dd: 600 }), 'keys').pause_ratio, 1],
  ['every 4th key Backspace is 0.25', () => f(typing(20, { bsEvery: 4 }), 'keys').backspace_ratio, 0.25],
  ['a straight line has straightness 1', () => f(line(30), 'mouse').straightness, 1],
  ['a straight line has curvature 0', () => f(line(30), 'mouse').curvature_mean, 0],
  ['5 px every 10 ms is 0.5 px/ms', () => f(line(30), 'mouse').speed_mean, 0.5],
  ['constant speed has accel 0', () => f(line(30), 'mouse').accel_mean, 0],
  // 30 samples 0.1 rad apart: 28 turns of 0.1 rad over 29 chords of 2r sin(0.05)
  ['a circle of radius 100 turns 0.1 rad per chord', () => f(arc(30, 100), 'mouse').curvature_mean,
    roundTo((28 * 0.1) / (29 * 200 * Math.sin(0.05)), 4)],
  ['wheel notches of 100 px are delta 100', () => f(wheel(3, 5), 'scroll').delta_mean, 100],
  ['100 px per 50 ms is 2 px/ms', () => f(wheel(3, 5), 'scroll').speed_mean, 2],
  ['bursts of 5 notches are burst_len 5', () => f(wheel(3, 5), 'scroll').burst_len_mean, 5],
  ['one direction is dir_change 0', () => f(wheel(3, 5), 'scroll').dir_change_ratio, 0],
  ['alternating bursts change direction twice in 14 steps', () => f(wheel(3, 5, { flip: true }), 'scroll').dir_change_ratio, 0.143],
  ['200 px in 100 ms is 2 px/ms', () => f(swipe(0, 1), 'touch').swipe_speed_mean, 2],
  ['a swipe lasting 100 ms', () => f(swipe(0, 1), 'touch').swipe_duration_mean, 100],
  ['a straight swipe has straightness 1', () => f(swipe(0, 1), 'touch').swipe_straightness, 1],
  ['pressure 0.5 is 0.5', () => f(swipe(0, 1), 'touch').pressure_mean, 0.5],
  ['contact is width times height', () => f(swipe(0, 1), 'touch').contact_mean, 200],
  ['two fingers down is multi_touch 1', () => f(swipe(0, 1, { nt: 2 }), 'touch').multi_touch_ratio, 1],
];
for (const [name, got, want] of cases) test(name, () => assert.equal(got(), want));

test('a hold outlier (robust z > 5) does not move the mean', () => {
  const holds = Array.from({ length: 30 }, (_, i) => 100 + (i % 5) - 2);
  holds[7] = 1900;
  assert.equal(f(typing(30, { holds }), 'keys').hold_mean, 100);
});

test('robust() keeps everything when the spread is zero', () => {
  assert.deepEqual(robust([5, 5, 5, 5]), [5, 5, 5, 5]);
});

test('robust() falls back to mean absolute deviation when MAD is 0', () => {
  assert.deepEqual(robust([1, 1, 1, 1, 1, 1, 2, 100]), [1, 1, 1, 1, 1, 1, 2]);
});

test('typing faster than 40 keys/s clips rate to its documented maximum', () => {
  assert.equal(f(typing(30, { dd: 10, hold: 5 }), 'keys').rate, FEATURES.keys.f.rate[1]);
});

test('every feature lies in its documented range, rounded to its decimals', () => {
  const ev = [...typing(40, { dd: 7, hold: 3 }), ...line(40, { sx: 900, sy: 0, dt: 50 }), ...wheel(2, 6), ...swipe(0, 1)];
  for (const [mod, w] of Object.entries(extractWindow(ev))) {
    for (const [k, v] of Object.entries(w.f)) {
      const [lo, hi, dec] = FEATURES[mod].f[k];
      assert.ok(v >= lo && v <= hi, `${mod}.${k}=${v}`);
      assert.equal(roundTo(v, dec), v);
    }
  }
});

test('events going back in time are dropped', () => {
  const ev = typing(20);
  ev.splice(10, 0, { type: 'keydown', t: 5, code: 'X' }, { type: 'keyup', t: 6, code: 'X' });
  assert.deepEqual(extractWindow(ev), extractWindow(typing(20)));
});

test('impossible events are dropped', () => {
  const junk = [
    { type: 'mousemove', t: 5, x: null, y: 1 }, { type: 'mousemove', t: -1, x: 1, y: 1 },
    { type: 'touchstart', t: 5, x: 1, y: 1, pressure: 2 }, { type: 'touchmove', t: 5, x: 1, y: 1, w: -3 },
    { type: 'wheel', t: 5, dy: 'down' }, { type: 'keydown', t: Infinity }, { type: 'constructor', t: 5 },
    { type: ['keydown'], t: 5 }, null, 7, 'keydown',
  ];
  assert.deepEqual(extractWindow([...junk, ...typing(20)]), extractWindow(typing(20)));
});

test('auto-repeat keydowns of a held key are ignored', () => {
  const ev = typing(20);
  ev.splice(1, 0, { type: 'keydown', t: 30, code: 'K0' }, { type: 'keydown', t: 60, code: 'K0' });
  assert.equal(extractWindow(ev).keys.n, 20);
});

test('a click: hold from down to up, hesitation since the last move', () => {
  const ev = [...line(10), { type: 'mousedown', t: 290, button: 0 }, { type: 'mouseup', t: 370, button: 0 }];
  const w = f(ev, 'mouse');
  assert.equal(w.hesitation_mean, 200);
  assert.equal(w.click_hold_mean, 80);
});

test('scroll positions are used when there are too few wheel events', () => {
  const ev = Array.from({ length: 6 }, (_, i) => ({ type: 'scroll', t: i * 20, dx: 0, dy: 40 }));
  assert.equal(f([{ type: 'wheel', t: 0, dy: 999 }, ...ev], 'scroll').delta_mean, 40);
});

test('a tap is not a swipe but counts for pressure and contact', () => {
  const tap = swipe(0, 1, { len: 4, p: 0.25 });
  const w = f(tap, 'touch');
  assert.equal(w.swipe_speed_mean, undefined);
  assert.equal(w.pressure_mean, 0.25);
});

test('device is touch when touch events outnumber mouse events', () => {
  assert.equal(deviceOf([...swipe(0, 1), ...line(2)]), 'touch');
  assert.equal(deviceOf([...swipe(0, 1), ...line(9)]), 'desktop');
});

test('roundTo rounds half away from zero', () => {
  assert.deepEqual([roundTo(0.125, 2), roundTo(-0.125, 2), roundTo(2.5, 0), roundTo(-0.0001, 1)], [0.13, -0.13, 3, 0]);
});

test('tumbling windows: seq from 1, ts at the window end, empty windows skipped', () => {
  const ev = [...typing(20, { t0: 1000 }), ...typing(20, { t0: 61000 })];
  const docs = windowsFromEvents(ev, 30000);
  assert.deepEqual(docs.map((d) => [d.seq, d.ts, d.m.keys.n]), [[1, 30000, 20], [2, 90000, 20]]);
});
