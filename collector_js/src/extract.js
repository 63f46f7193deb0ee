// Pure feature extraction: a list of raw events -> the v1 feature window.
// No DOM, no clock: the browser collector and bin/extract.mjs share it, and
// sidecar/extract.py is its line-by-line Python twin (keep them in step; the
// definitions are written down in docs/collector.md).
import { FEATURES } from './features.js';

const MOD = {
  __proto__: null,
  keydown: 'keys', keyup: 'keys',
  mousemove: 'mouse', mousedown: 'mouse', mouseup: 'mouse',
  wheel: 'scroll', scroll: 'scroll',
  touchstart: 'touch', touchmove: 'touch', touchend: 'touch',
};
export const MODALITIES = ['keys', 'mouse', 'scroll', 'touch'];
export const DEFAULT_SID = 'AAAAAAAAAAAAAAAAAAAAAA';

const KEY_REPEAT_MS = 2000; // a second keydown of a held key within this is auto-repeat
const KEY_GAP_MS = 5000; // longer down->down gaps are not typing: counted nowhere
const KEY_PAUSE_MS = 500; // bursts split at gaps above this; pause_ratio threshold
const STROKE_GAP_MS = 300; // mouse strokes split at pauses above this (and at clicks)
const SCROLL_GAP_MS = 300; // scroll bursts split at gaps above this
const SWIPE_MIN_PX = 10; // a touch track shorter than this (path) is a tap, not a swipe
const Z_MAX = 5; // robust z above this is an outlier

const num = (v) => typeof v === 'number' && Number.isFinite(v);
const opt = (e, k) => e[k] === undefined || num(e[k]);
const or = (v, d) => (num(v) ? v : d);
const hyp = (dx, dy) => Math.sqrt(dx * dx + dy * dy);

/** An event is possible: known type, finite t >= 0, numeric fields finite and in range. */
export function valid(e) {
  if (!e || typeof e !== 'object') return false;
  const m = typeof e.type === 'string' && MOD[e.type];
  if (!m || !num(e.t) || e.t < 0) return false;
  if (m === 'mouse') return e.type !== 'mousemove' ? opt(e, 'x') && opt(e, 'y') : num(e.x) && num(e.y);
  if (m === 'scroll') return opt(e, 'dx') && opt(e, 'dy');
  if (m === 'touch') {
    return num(e.x) && num(e.y) && opt(e, 'pressure') && opt(e, 'w') && opt(e, 'h')
      && (e.pressure === undefined || (e.pressure >= 0 && e.pressure <= 1))
      && (e.w === undefined || e.w >= 0) && (e.h === undefined || e.h >= 0);
  }
  return true;
}

/** Possible events, dropping any whose t goes back in time within its modality. */
export function cleanEvents(events) {
  const last = {};
  const out = [];
  for (const e of events) {
    if (!valid(e)) continue;
    const m = MOD[e.type];
    if (last[m] !== undefined && e.t < last[m]) continue;
    last[m] = e.t;
    out.push(e);
  }
  return out;
}

const sum = (a) => {
  let s = 0;
  for (const v of a) s += v;
  return s;
};
const mean = (a) => sum(a) / a.length;
const std = (a) => {
  const m = mean(a);
  let s = 0;
  for (const v of a) s += (v - m) * (v - m);
  return Math.sqrt(s / a.length);
};
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const k = s.length >> 1;
  return s.length % 2 ? s[k] : (s[k - 1] + s[k]) / 2;
};

/** Drops values with robust z = |x - median| / (1.4826 MAD) above 5 (MAD 0: 1.2533 mean abs dev). */
export function robust(a) {
  if (a.length < 3) return a;
  const med = median(a);
  const dev = a.map((v) => Math.abs(v - med));
  let scale = 1.4826 * median(dev);
  if (scale === 0) scale = 1.253314 * mean(dev);
  return scale === 0 ? a : a.filter((_, i) => dev[i] <= Z_MAX * scale);
}

/** Values inside [lo, hi] of feature `name` (the per-event "impossible" rule), then robust(). */
const keep = (a, mod, name, noOutliers) => {
  const [lo, hi] = FEATURES[mod].f[name];
  const b = a.filter((v) => v >= lo && v <= hi);
  return noOutliers ? b : robust(b);
};

function series(f, prefix, a) {
  if (a.length) f[prefix + '_mean'] = mean(a);
  if (a.length > 1) f[prefix + '_std'] = std(a);
}

function keys(ev) {
  const downs = [];
  const open = [];
  const holds = [];
  for (const e of ev) {
    const code = typeof e.code === 'string' ? e.code : '';
    if (e.type === 'keydown') {
      const i = code ? open.findIndex((r) => r.c === code) : -1;
      if (i >= 0) {
        if (e.t - open[i].t <= KEY_REPEAT_MS) continue;
        open.splice(i, 1);
      }
      const r = { t: e.t, c: code, b: e.bs === true, u: undefined };
      downs.push(r);
      open.push(r);
    } else {
      const i = open.findIndex((r) => r.c === code);
      if (i < 0) continue;
      const r = open.splice(i, 1)[0];
      r.u = e.t;
      holds.push(e.t - r.t);
    }
  }
  const gaps = [];
  const uds = [];
  let pauses = 0;
  let keysIn = 0;
  let timeIn = 0;
  let first = 0;
  for (let i = 1; i <= downs.length; i++) {
    const g = i < downs.length ? downs[i].t - downs[i - 1].t : Infinity;
    if (g > KEY_PAUSE_MS) {
      const d = downs[i - 1].t - downs[first].t;
      if (i - 1 > first && d > 0) {
        keysIn += i - 1 - first;
        timeIn += d;
      }
      first = i;
    }
    if (g > KEY_GAP_MS) continue;
    gaps.push(g);
    if (g > KEY_PAUSE_MS) pauses++;
    if (downs[i - 1].u !== undefined) uds.push(downs[i].t - downs[i - 1].u);
  }
  const f = {};
  series(f, 'hold', keep(holds, 'keys', 'hold_mean'));
  series(f, 'dd', keep(gaps, 'keys', 'dd_mean'));
  series(f, 'ud', keep(uds, 'keys', 'ud_mean'));
  if (timeIn > 0) f.rate = (1000 * keysIn) / timeIn;
  if (gaps.length) f.pause_ratio = pauses / gaps.length;
  if (downs.length) f.backspace_ratio = downs.filter((r) => r.b).length / downs.length;
  return [downs.length, f];
}

function mouse(ev) {
  const strokes = [];
  const hes = [];
  const holds = [];
  const down = new Map();
  let cur = null;
  let last = null;
  for (const e of ev) {
    if (e.type === 'mousemove') {
      if (!cur || e.t - last.t > STROKE_GAP_MS) strokes.push((cur = []));
      if (!cur.length || e.t > cur[cur.length - 1].t) cur.push(e);
      last = e;
      continue;
    }
    cur = null;
    const b = or(e.button, 0);
    if (e.type === 'mousedown') {
      if (last) hes.push(e.t - last.t);
      down.set(b, e.t);
    } else if (down.has(b)) {
      holds.push(e.t - down.get(b));
      down.delete(b);
    }
  }
  const speeds = [];
  const accels = [];
  const straight = [];
  const curv = [];
  for (const s of strokes) {
    let path = 0;
    let turn = 0;
    let turns = 0;
    let pv;
    let pdt;
    let ph;
    for (let i = 1; i < s.length; i++) {
      const dx = s[i].x - s[i - 1].x;
      const dy = s[i].y - s[i - 1].y;
      const dt = s[i].t - s[i - 1].t;
      const d = hyp(dx, dy);
      const v = d / dt;
      path += d;
      speeds.push(v);
      if (pv !== undefined) accels.push(Math.abs(v - pv) / ((dt + pdt) / 2));
      pv = v;
      pdt = dt;
      if (d > 0) {
        const h = Math.atan2(dy, dx);
        if (ph !== undefined) {
          let dh = h - ph;
          if (dh > Math.PI) dh -= 2 * Math.PI;
          else if (dh < -Math.PI) dh += 2 * Math.PI;
          turn += Math.abs(dh);
          turns++;
        }
        ph = h;
      }
    }
    if (s.length > 2 && path > 0) {
      const c = hyp(s[s.length - 1].x - s[0].x, s[s.length - 1].y - s[0].y) / path;
      if (num(c)) straight.push(c);
      if (turns) curv.push(turn / path);
    }
  }
  const f = {};
  series(f, 'speed', keep(speeds, 'mouse', 'speed_mean'));
  series(f, 'accel', keep(accels, 'mouse', 'accel_mean'));
  if (straight.length) f.straightness = mean(straight);
  const c = keep(curv, 'mouse', 'curvature_mean');
  if (c.length) f.curvature_mean = mean(c);
  const h = keep(hes, 'mouse', 'hesitation_mean');
  if (h.length) f.hesitation_mean = mean(h);
  const k = keep(holds, 'mouse', 'click_hold_mean');
  if (k.length) f.click_hold_mean = mean(k);
  return [ev.length, f];
}

function scroll(ev) {
  const steps = (type) => {
    const out = [];
    for (const e of ev) {
      if (e.type !== type) continue;
      const dx = or(e.dx, 0);
      const dy = or(e.dy, 0);
      const a = hyp(dx, dy);
      if (a <= 0 || a > FEATURES.scroll.f.delta_mean[1]) continue;
      const dir = Math.abs(dy) >= Math.abs(dx) ? (dy > 0 ? 1 : -1) : dx > 0 ? 2 : -2;
      out.push({ t: e.t, a, dir });
    }
    return out;
  };
  const wheel = steps('wheel');
  const src = wheel.length >= FEATURES.scroll.min ? wheel : steps('scroll');
  const speeds = [];
  const bursts = [];
  let changes = 0;
  for (let i = 0; i < src.length; i++) {
    const dt = i ? src[i].t - src[i - 1].t : Infinity;
    if (dt > SCROLL_GAP_MS) bursts.push(0);
    bursts[bursts.length - 1]++;
    if (dt <= SCROLL_GAP_MS && dt > 0) speeds.push(src[i].a / dt);
    if (i && src[i].dir !== src[i - 1].dir) changes++;
  }
  const f = {};
  series(f, 'speed', keep(speeds, 'scroll', 'speed_mean'));
  const d = keep(src.map((s) => s.a), 'scroll', 'delta_mean');
  if (d.length) f.delta_mean = mean(d);
  if (bursts.length) f.burst_len_mean = mean(bursts);
  if (src.length > 1) f.dir_change_ratio = changes / (src.length - 1);
  return [src.length, f];
}

function touch(ev) {
  const open = new Map();
  const speeds = [];
  const durs = [];
  const straight = [];
  const pres = [];
  const contact = [];
  let starts = 0;
  let multi = 0;
  for (const e of ev) {
    if (e.type !== 'touchend') {
      if (num(e.pressure) && e.pressure > 0) pres.push(e.pressure);
      if (num(e.w) && num(e.h) && e.w > 0 && e.h > 0) contact.push(e.w * e.h);
    }
    const id = or(e.id, 0);
    if (e.type === 'touchstart') {
      starts++;
      if (or(e.nt, 1) >= 2) multi++;
      open.set(id, [e]);
      continue;
    }
    const tr = open.get(id);
    if (!tr) continue;
    tr.push(e);
    if (e.type !== 'touchend') continue;
    open.delete(id);
    let path = 0;
    for (let i = 1; i < tr.length; i++) path += hyp(tr[i].x - tr[i - 1].x, tr[i].y - tr[i - 1].y);
    const dur = e.t - tr[0].t;
    if (path < SWIPE_MIN_PX || dur <= 0) continue;
    speeds.push(path / dur);
    durs.push(dur);
    const c = hyp(e.x - tr[0].x, e.y - tr[0].y) / path;
    if (num(c)) straight.push(c);
  }
  const f = {};
  series(f, 'swipe_speed', keep(speeds, 'touch', 'swipe_speed_mean'));
  const d = keep(durs, 'touch', 'swipe_duration_mean');
  if (d.length) f.swipe_duration_mean = mean(d);
  if (straight.length) f.swipe_straightness = mean(straight);
  series(f, 'pressure', keep(pres, 'touch', 'pressure_mean', true));
  const c = keep(contact, 'touch', 'contact_mean');
  if (c.length) f.contact_mean = mean(c);
  if (starts) f.multi_touch_ratio = multi / starts;
  return [ev.length, f];
}

const EXTRACT = { keys, mouse, scroll, touch };

/** Rounds half away from zero to `d` decimals (identical in the Python twin). */
export function roundTo(v, d) {
  const p = 10 ** d;
  const r = Math.floor(Math.abs(v) * p + 0.5) / p;
  return v < 0 && r ? -r : r;
}

/**
 * Raw events of one window -> the `m` part of a v1 document:
 * `{keys: {n, f: {hold_mean, ...}}, ...}`, only modalities with n > 0, each feature
 * clipped to its documented range and rounded; a feature that cannot be computed is absent.
 */
export function extractWindow(events) {
  const ev = cleanEvents(events);
  const by = { keys: [], mouse: [], scroll: [], touch: [] };
  for (const e of ev) by[MOD[e.type]].push(e);
  const m = {};
  for (const name of MODALITIES) {
    const [n, raw] = EXTRACT[name](by[name]);
    if (!n) continue;
    const f = {};
    for (const [k, [lo, hi, dec]] of Object.entries(FEATURES[name].f)) {
      if (num(raw[k])) f[k] = roundTo(Math.min(Math.max(raw[k], lo), hi), dec);
    }
    m[name] = { n, f };
  }
  return m;
}

/** `touch` when a window holds more touch than mouse events, else `desktop`. */
export function deviceOf(events) {
  let t = 0;
  for (const e of cleanEvents(events)) {
    const m = MOD[e.type];
    if (m === 'touch') t++;
    else if (m === 'mouse') t--;
  }
  return t > 0 ? 'touch' : 'desktop';
}

/**
 * Tumbling windows [k*W, (k+1)*W) over a recorded stream -> v1 documents
 * `{sid, seq, ts, dev, m}` (seq from 1, ts = window end); windows with empty `m` are skipped.
 */
export function windowsFromEvents(events, windowMs, { sid = DEFAULT_SID } = {}) {
  const buckets = new Map();
  for (const e of cleanEvents(events)) {
    const k = Math.floor(e.t / windowMs);
    if (!buckets.has(k)) buckets.set(k, []);
    buckets.get(k).push(e);
  }
  const docs = [];
  for (const k of [...buckets.keys()].sort((a, b) => a - b)) {
    const ev = buckets.get(k);
    const m = extractWindow(ev);
    if (!Object.keys(m).length) continue;
    docs.push({ sid, seq: docs.length + 1, ts: (k + 1) * windowMs, dev: deviceOf(ev), m });
  }
  return docs;
}
