// The few browser globals the collector touches, for running it in Node.
// Node already has fetch, Headers, Request, Response, Event, EventTarget,
// CompressionStream and crypto; this adds window-as-EventTarget, document,
// location and sessionStorage.  Import it before starting a collector.

class MemoryStorage {
  #m = new Map();
  getItem(k) {
    return this.#m.has(k) ? this.#m.get(k) : null;
  }
  setItem(k, v) {
    this.#m.set(k, String(v));
  }
  clear() {
    this.#m.clear();
  }
}

/** A document stand-in: an EventTarget that records every cookie string written. */
class FakeDocument extends EventTarget {
  cookies = [];
  documentElement = {};
  set cookie(v) {
    this.cookies.push(v);
  }
  get cookie() {
    return this.cookies.at(-1) ?? '';
  }
}

const windowTarget = new EventTarget();
globalThis.addEventListener = windowTarget.addEventListener.bind(windowTarget);
globalThis.removeEventListener = windowTarget.removeEventListener.bind(windowTarget);
globalThis.dispatchEvent = windowTarget.dispatchEvent.bind(windowTarget);
globalThis.sessionStorage = new MemoryStorage();
globalThis.scrollX = 0;
globalThis.scrollY = 0;
globalThis.innerHeight = 800;

/** Points location at `origin` and gives a fresh document and session storage. */
export function resetPage(origin = 'http://127.0.0.1:9') {
  const u = new URL('/page', origin);
  globalThis.location = { href: u.href, origin: u.origin, protocol: u.protocol };
  globalThis.document = new FakeDocument();
  globalThis.sessionStorage.clear();
  return globalThis.document;
}

/** Dispatches an Event of `type` on `target` with the given own properties (timeStamp included). */
export function fire(target, type, props) {
  const e = new Event(type);
  for (const [k, v] of Object.entries(props)) Object.defineProperty(e, k, { value: v });
  target.dispatchEvent(e);
}
