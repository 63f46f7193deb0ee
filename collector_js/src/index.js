// @bioshard/collector: behaviour telemetry for the bioshard sidecar.
// Captures typing/mouse/scroll/touch timing (never what was typed, never where),
// turns the last `windowMs` into v1 features and attaches them to same-origin
// fetch/XHR requests as `x-bioshard-telemetry` (and to plain navigations as cookie
// `__bsh`).  See docs/collector.md for the feature definitions and freshness rules.
import { deviceOf, extractWindow, MODALITIES } from './extract.js';
import { b64url, encodeDeflate, encodeJson } from './encode.js';

export { FEATURES } from './features.js';
export { extractWindow, windowsFromEvents } from './extract.js';
export { encodeDeflate, encodeJson } from './encode.js';

export const HEADER = 'x-bioshard-telemetry';
export const COOKIE = '__bsh';
const STORE_KEY = '__bsh';
const REFRESH_MS = 1000; // background re-encoding period while there is new activity
const FRESH_MS = 2 * REFRESH_MS; // a precomputed value older than this is not used

/** Fixed-capacity ring buffer: O(1) push, oldest overwritten. */
function ring(cap) {
  const a = [];
  let i = 0;
  return {
    push(e) {
      if (a.length < cap) a.push(e);
      else {
        a[i] = e;
        i = (i + 1) % cap;
      }
    },
    list: () => a.slice(i).concat(a.slice(0, i)),
  };
}

/** Per page session id (128 random bits) and sequence counter, kept in sessionStorage. */
function session() {
  const load = () => {
    try {
      const s = JSON.parse(sessionStorage.getItem(STORE_KEY));
      if (/^[\w-]{22}$/.test(s.sid) && Number.isSafeInteger(s.seq)) return s;
    } catch {
      // no storage, nothing stored yet, or garbage: start a new session
    }
    return null;
  };
  let s = load();
  if (!s) s = { sid: b64url(crypto.getRandomValues(new Uint8Array(16))), seq: 0 };
  return {
    sid: s.sid,
    seq: () => s.seq,
    next() {
      const stored = load(); // another collector on the page may have advanced it
      if (stored && stored.sid === s.sid && stored.seq > s.seq) s.seq = stored.seq;
      s.seq++;
      try {
        sessionStorage.setItem(STORE_KEY, JSON.stringify(s));
      } catch {
        // storage full or disabled: the in-memory counter still grows
      }
      return s.seq;
    },
  };
}

/**
 * Starts capturing and instrumenting requests.
 * @param {import('../types/index.js').CollectorOptions} [options]
 * @returns {import('../types/index.js').Collector}
 */
export function start(options = {}) {
  const W = globalThis;
  const D = W.document;
  const windowMs = options.windowMs || 30000;
  const maxEvents = options.maxEvents || 1000;
  const header = options.headerName || HEADER;
  const inst = options.instrument;
  const cookie = options.cookie !== false;
  const rings = {};
  for (const m of options.modalities || MODALITIES) if (MODALITIES.includes(m)) rings[m] = ring(maxEvents);
  const ses = session();
  const offs = [];
  let pre = null; // {v, seq, at}: an encoded value with its own seq, used at most once
  let sent = 0; // highest seq handed out: values leave in increasing seq order
  let dirty = true;
  let busy = false;

  const on = (target, type, fn) => {
    const o = { capture: true, passive: true };
    target.addEventListener(type, fn, o);
    offs.push(() => target.removeEventListener(type, fn, o));
  };
  const rec = (mod, e) => {
    if (rings[mod]) {
      rings[mod].push(e);
      dirty = true;
    }
  };

  // keys: timings and the Backspace/Delete category only; `code` pairs down/up in memory.
  on(W, 'keydown', (e) => {
    if (!e.repeat) {
      rec('keys', { type: 'keydown', t: e.timeStamp, code: e.code || '', bs: e.key === 'Backspace' || e.key === 'Delete' });
    }
  });
  on(W, 'keyup', (e) => rec('keys', { type: 'keyup', t: e.timeStamp, code: e.code || '' }));

  // mouse via pointer events (mouse events where there are none); pen and touch -> touch.
  const touchEvents = 'ontouchstart' in W;
  const active = new Set();
  const mouse = (type, e) =>
    rec('mouse', type === 'mousemove'
      ? { type, t: e.timeStamp, x: e.clientX, y: e.clientY }
      : { type, t: e.timeStamp, button: e.button });
  const touch = (type, e, id, pressure, w, h, nt) =>
    rec('touch', { type, t: e.timeStamp, id, x: e.clientX, y: e.clientY, pressure, w, h, nt });
  if ('PointerEvent' in W) {
    const ptr = (kind) => (e) => {
      if (e.pointerType === 'mouse') return mouse('mouse' + (kind === 'start' ? 'down' : kind === 'end' ? 'up' : 'move'), e);
      if (e.pointerType === 'touch' && touchEvents) return;
      const id = e.pointerId;
      if (kind === 'start') active.add(id);
      else if (!active.has(id)) return; // pen hovering
      touch('touch' + kind, e, id, e.pressure, e.width, e.height, active.size);
      if (kind === 'end') active.delete(id);
    };
    on(W, 'pointerdown', ptr('start'));
    on(W, 'pointermove', ptr('move'));
    on(W, 'pointerup', ptr('end'));
    on(W, 'pointercancel', ptr('end'));
  } else {
    for (const type of ['mousemove', 'mousedown', 'mouseup']) on(W, type, (e) => mouse(type, e));
  }
  if (touchEvents) {
    for (const [type, as] of [['touchstart'], ['touchmove'], ['touchend'], ['touchcancel', 'touchend']]) {
      on(W, type, (e) => {
        for (const c of e.changedTouches) {
          touch(as || type, c, c.identifier, c.force, (c.radiusX || 0) * 2, (c.radiusY || 0) * 2, e.touches.length);
        }
      });
    }
  }

  // scroll: wheel deltas in px, and position changes of the page or any scrolled element.
  on(W, 'wheel', (e) => {
    const k = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? W.innerHeight : 1;
    rec('scroll', { type: 'wheel', t: e.timeStamp, dx: e.deltaX * k, dy: e.deltaY * k });
  });
  const pos = new WeakMap();
  if (D) {
    on(D, 'scroll', (e) => {
      const el = e.target;
      const page = !el || el === D || el === D.documentElement;
      const p = page ? [W.scrollX, W.scrollY] : [el.scrollLeft, el.scrollTop];
      const q = pos.get(el || D) || [0, 0];
      pos.set(el || D, p);
      rec('scroll', { type: 'scroll', t: e.timeStamp, dx: p[0] - q[0], dy: p[1] - q[1] });
    });
  }

  const doc = (seq) => {
    const now = performance.now();
    const ev = [];
    for (const m in rings) for (const e of rings[m].list()) if (e.t > now - windowMs) ev.push(e);
    return { sid: ses.sid, seq, ts: Date.now(), dev: deviceOf(ev), m: extractWindow(ev) };
  };
  const snapshot = () => {
    const d = doc(ses.next());
    sent = d.seq;
    return d;
  };
  const take = () => {
    const p = pre;
    pre = null;
    setTimeout(refresh, 0); // the next request finds a compressed value ready
    if (!p || p.seq <= sent || performance.now() - p.at > FRESH_MS) return null;
    sent = p.seq;
    return p.v;
  };
  const valueSync = () => take() || encodeJson(snapshot());
  const valueAsync = async () => take() || encodeDeflate(snapshot());
  const setCookie = (v) => {
    if (D) {
      D.cookie = `${COOKIE}=${v}; path=/; SameSite=Strict; max-age=${Math.ceil(windowMs / 1000)}`
        + (W.location && W.location.protocol === 'https:' ? '; Secure' : '');
    }
  };

  const refresh = async () => {
    if (busy || (!dirty && pre)) return;
    busy = true;
    dirty = false;
    try {
      if (cookie) setCookie(await encodeDeflate(snapshot()));
      const d = doc(ses.next()); // not yet handed out: `sent` moves when it is taken
      pre = { v: await encodeDeflate(d), seq: d.seq, at: performance.now() };
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(refresh, REFRESH_MS);
  if (timer && timer.unref) timer.unref();
  refresh();
  if (cookie && D) {
    // a link or a form about to navigate gets a brand-new value right now
    on(D, 'click', (e) => e.target && e.target.closest && e.target.closest('a[href]') && setCookie(valueSync()));
    on(D, 'submit', () => setCookie(valueSync()));
  }

  const match = (url) => {
    let u;
    try {
      u = new URL(url, W.location.href);
    } catch {
      return false;
    }
    const same = u.origin === W.location.origin;
    if (!inst) return same;
    return inst.some((p) =>
      typeof p === 'string' ? (p[0] === '/' ? same && u.pathname.startsWith(p) : u.href.startsWith(p)) : p.test(u.href));
  };

  const fetch0 = W.fetch;
  if (fetch0) {
    W.fetch = function fetch(input, init) {
      const url = typeof input === 'string' || input instanceof URL ? String(input) : input && input.url;
      if (!match(url)) return fetch0.call(W, input, init);
      // telemetry must never break the page: on any error the request goes out without it
      return valueAsync().catch(() => '').then((v) => {
        if (!v) return fetch0.call(W, input, init);
        const h = new Headers((init && init.headers) || (input instanceof Request ? input.headers : undefined));
        h.set(header, v);
        return fetch0.call(W, input, { ...init, headers: h });
      });
    };
  }
  const XP = W.XMLHttpRequest && W.XMLHttpRequest.prototype;
  const open0 = XP && XP.open;
  const send0 = XP && XP.send;
  const urls = new WeakMap();
  if (XP) {
    XP.open = function open(method, url) {
      urls.set(this, url);
      return open0.apply(this, arguments);
    };
    XP.send = function send() {
      if (urls.has(this) && match(String(urls.get(this)))) {
        try {
          this.setRequestHeader(header, valueSync());
        } catch {
          // not OPENED (send() will throw itself) or header refused: send as is
        }
      }
      return send0.apply(this, arguments);
    };
  }

  return {
    stop() {
      clearInterval(timer);
      for (const off of offs.splice(0)) off();
      if (fetch0) W.fetch = fetch0;
      if (XP) {
        XP.open = open0;
        XP.send = send0;
      }
      if (cookie && D) D.cookie = `${COOKIE}=; path=/; max-age=0`;
    },
    current: () => doc(ses.seq()),
  };
}
