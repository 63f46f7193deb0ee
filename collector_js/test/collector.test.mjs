// The collector in Node: encoding, seq freshness, instrumentation, stop(), privacy.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, afterEach, before, test } from 'node:test';
import { inflateRawSync } from 'node:zlib';

import { fire, resetPage } from './env.mjs';
import { HEADER, start } from '../src/index.js';
import { encodeDeflate, encodeJson, fitJson, MAX_VALUE } from '../src/encode.js';
import { FEATURES } from '../src/features.js';

/** Decodes a `1z.`/`1j.` value to its JSON text (what the sidecar does). */
function decodeValue(v) {
  const raw = Buffer.from(v.slice(3), 'base64url');
  if (v.startsWith('1z.')) return inflateRawSync(raw).toString('utf8');
  assert.ok(v.startsWith('1j.'), v.slice(0, 3));
  return raw.toString('utf8');
}

/** A document with every v1 feature at its maximum (the largest realistic one). */
function fullDoc() {
  const m = {};
  for (const [mod, { f }] of Object.entries(FEATURES)) {
    m[mod] = { n: 999999, f: Object.fromEntries(Object.entries(f).map(([k, [, hi]]) => [k, hi - 0.123456])) };
  }
  return { sid: 'A'.repeat(22), seq: 2 ** 52, ts: Date.now(), dev: 'desktop', m };
}

/** Types `text` (20 ms holds, 120 ms apart) starting at performance.now(). */
function typeText(text) {
  let t = performance.now();
  for (const ch of text) {
    const code = ch === ' ' ? 'Space' : `Key${ch.toUpperCase()}`;
    fire(globalThis, 'keydown', { timeStamp: t, key: ch, code, repeat: false });
    fire(globalThis, 'keyup', { timeStamp: t + 20, key: ch, code });
    t += 120;
  }
}

/** An HTTP server on 127.0.0.1 that echoes the telemetry header back as the body. */
async function echoServer() {
  const srv = createServer((req, res) => res.end(req.headers[HEADER] ?? ''));
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return [srv, `http://127.0.0.1:${srv.address().port}`];
}

let servers;
let origin;
let otherOrigin; // another port is another origin
let collector;
before(async () => {
  servers = [await echoServer(), await echoServer()];
  [[, origin], [, otherOrigin]] = servers;
});
after(() => servers.forEach(([srv]) => srv.close()));
afterEach(() => collector?.stop());

test('1z. value inflates to the same JSON and stays within 4 KiB', async () => {
  const doc = fullDoc();
  const v = await encodeDeflate(doc);
  assert.ok(v.startsWith('1z.'));
  assert.deepEqual(JSON.parse(decodeValue(v)), doc);
  assert.ok(v.length <= MAX_VALUE, String(v.length));
});

test('1j. value decodes to the same JSON', () => {
  const doc = fullDoc();
  assert.deepEqual(JSON.parse(decodeValue(encodeJson(doc))), doc);
});

test('an oversized document loses whole modalities until it fits', () => {
  const doc = fullDoc();
  doc.m.touch.f.padding = 'x'.repeat(5000);
  const json = JSON.parse(fitJson(doc));
  assert.deepEqual(Object.keys(json.m), ['keys', 'mouse', 'scroll']);
  assert.ok(encodeJson(doc).length <= MAX_VALUE);
});

test('each instrumented fetch carries a new snapshot with seq incremented', async () => {
  resetPage(origin);
  collector = start({ cookie: false });
  typeText('hello there general');
  const docs = [];
  for (let i = 0; i < 4; i++) {
    const v = await (await fetch(`${origin}/api/ping`)).text();
    docs.push(JSON.parse(decodeValue(v)));
  }
  const seqs = docs.map((d) => d.seq);
  assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b));
  assert.equal(new Set(seqs).size, 4);
  assert.equal(new Set(docs.map((d) => d.sid)).size, 1);
  assert.match(docs[0].sid, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(docs[3].m.keys.n, 19);
});

test('the session id and seq survive a new collector in the same page session', async () => {
  resetPage(origin);
  collector = start({ cookie: false });
  const a = JSON.parse(decodeValue(await (await fetch(`${origin}/x`)).text()));
  collector.stop();
  collector = start({ cookie: false });
  const b = JSON.parse(decodeValue(await (await fetch(`${origin}/x`)).text()));
  assert.equal(b.sid, a.sid);
  assert.ok(b.seq > a.seq);
});

const matching = [
  ['default: same origin only', undefined, '/api/ping', true],
  ['default: other origin untouched', undefined, 'OTHER/api/ping', false],
  ['path prefix matches', ['/api/'], '/api/ping', true],
  ['path prefix does not match', ['/api/'], '/static/x', false],
  ['RegExp on the absolute URL', [/\/ping$/], '/api/ping', true],
  ['absolute prefix of another origin', ['OTHER/api/'], 'OTHER/api/ping', true],
];
for (const [name, instrument, path, expected] of matching) {
  test(`instrument option: ${name}`, async () => {
    resetPage(origin);
    const abs = (p) => (p.startsWith('OTHER') ? p.replace('OTHER', otherOrigin) : p);
    collector = start({ cookie: false, instrument: instrument && instrument.map((p) => (typeof p === 'string' ? abs(p) : p)) });
    const body = await (await fetch(path.startsWith('/') ? origin + path : abs(path))).text();
    assert.equal(body !== '', expected);
  });
}

test('stop() restores fetch and XMLHttpRequest and removes listeners', () => {
  resetPage(origin);
  class XHR {
    open() {}
    send() {}
  }
  globalThis.XMLHttpRequest = XHR;
  const [f0, open0, send0] = [globalThis.fetch, XHR.prototype.open, XHR.prototype.send];
  collector = start({ cookie: false });
  assert.notEqual(globalThis.fetch, f0);
  assert.notEqual(XHR.prototype.send, send0);
  collector.stop();
  assert.equal(globalThis.fetch, f0);
  assert.deepEqual([XHR.prototype.open, XHR.prototype.send], [open0, send0]);
  typeText('abcdefghijkl');
  assert.deepEqual(collector.current().m, {});
  delete globalThis.XMLHttpRequest;
});

test('XMLHttpRequest.send() gets a synchronous value for same-origin URLs only', () => {
  resetPage(origin);
  const sent = [];
  class XHR {
    open(method, url) {
      this.headers = {};
      this.url = url;
    }
    setRequestHeader(k, v) {
      this.headers[k] = v;
    }
    send() {
      sent.push([this.url, this.headers[HEADER]]);
    }
  }
  globalThis.XMLHttpRequest = XHR;
  collector = start({ cookie: false });
  for (const url of ['/api/a', 'https://elsewhere.example/b']) {
    const x = new XHR();
    x.open('GET', url);
    x.send();
  }
  collector.stop();
  delete globalThis.XMLHttpRequest;
  assert.equal(sent[1][1], undefined);
  assert.equal(typeof JSON.parse(decodeValue(sent[0][1])).seq, 'number');
});

test('the cookie is path=/, SameSite=Strict and expires on stop()', async () => {
  const doc = resetPage(origin);
  collector = start();
  await new Promise((r) => setTimeout(r, 50));
  assert.match(doc.cookies[0], /^__bsh=1[zj]\.[\w-]+; path=\/; SameSite=Strict; max-age=30$/);
  collector.stop();
  assert.match(doc.cookie, /^__bsh=; path=\/; max-age=0$/);
});

test('nothing typed can be read back from the document or the header', async () => {
  resetPage(origin);
  collector = start({ cookie: false });
  const sentence = 'quick brown foxes jump over lazy dogs';
  typeText(sentence);
  const v = await (await fetch(`${origin}/api/ping`)).text();
  const texts = [JSON.stringify(collector.current()), decodeValue(v), v];
  const words = sentence.split(' ');
  const keyNames = [...new Set([...sentence].map((c) => (c === ' ' ? 'Space' : `Key${c.toUpperCase()}`)))];
  for (const text of texts) {
    for (const word of [...words, sentence.replace(/ /g, '')]) {
      assert.ok(!text.toLowerCase().includes(word), `leaks ${word}`);
    }
    for (const name of keyNames) assert.ok(!text.includes(name), `leaks ${name}`);
    assert.doesNotMatch(text, /"(key|code|text|x|y)"/);
  }
  assert.equal(JSON.parse(decodeValue(v)).m.keys.n, sentence.length);
});

test('a mouse stroke and a wheel burst reach the document', () => {
  resetPage(origin);
  collector = start({ cookie: false, modalities: ['mouse', 'scroll'] });
  const t = performance.now();
  for (let i = 0; i < 25; i++) fire(globalThis, 'mousemove', { timeStamp: t + i * 10, clientX: i * 3, clientY: i * 4 });
  for (let i = 0; i < 6; i++) fire(globalThis, 'wheel', { timeStamp: t + i * 50, deltaX: 0, deltaY: 3, deltaMode: 1 });
  typeText('ignored because keys are off');
  const m = collector.current().m;
  assert.deepEqual(Object.keys(m), ['mouse', 'scroll']);
  assert.equal(m.mouse.f.straightness, 1);
  assert.equal(m.scroll.f.delta_mean, 48);
});
