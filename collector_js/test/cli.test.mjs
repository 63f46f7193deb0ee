// bin/extract.mjs: JSON lines of raw events in, JSON lines of v1 windows out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const BIN = new URL('../bin/extract.mjs', import.meta.url).pathname;
const run = (args, input) => spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8' });

const events = [];
for (let i = 0; i < 12; i++) {
  events.push({ type: 'keydown', t: 500 + i * 150, code: `K${i}` }, { type: 'keyup', t: 580 + i * 150, code: `K${i}` });
}
const jsonl = events.map((e) => JSON.stringify(e)).join('\n') + '\n\n';

test('one window per --window-ms bucket that has events', () => {
  const r = run(['--window-ms', '1000'], jsonl);
  assert.equal(r.status, 0, r.stderr);
  const docs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(docs.map((d) => [d.seq, d.ts, d.m.keys.n]), [[1, 1000, 4], [2, 2000, 6], [3, 3000, 2]]);
  assert.equal(docs[0].m.keys.f.hold_mean, 80);
});

test('--sid is copied into every window', () => {
  const r = run(['--sid=abcdefghijklmnop'], jsonl);
  assert.equal(JSON.parse(r.stdout).sid, 'abcdefghijklmnop');
});

const bad = [
  ['a non-JSON line', [], '{"type":"keydown"\n'],
  ['a JSON line that is not an object', [], '[1,2]\n'],
  ['a zero window', ['--window-ms', '0'], ''],
  ['an unknown flag', ['--nope'], ''],
];
for (const [name, args, input] of bad) {
  test(`exit 2 on ${name}`, () => assert.equal(run(args, input).status, 2));
}
