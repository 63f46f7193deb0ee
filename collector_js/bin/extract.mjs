#!/usr/bin/env node
// Recorded raw events (JSON lines on stdin) -> v1 feature windows (JSON lines on stdout).
// Usage: node bin/extract.mjs [--window-ms N] [--sid SID] < events.jsonl > windows.jsonl
// Tumbling windows [k*N, (k+1)*N) of event time `t`; see docs/collector.md.
import { windowsFromEvents, DEFAULT_SID } from '../src/extract.js';

function fail(msg) {
  process.stderr.write(`extract: ${msg}\n`);
  process.exit(2);
}

let windowMs = 30000;
let sid = DEFAULT_SID;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const [flag, inline] = argv[i].split('=', 2);
  const value = () => (inline !== undefined ? inline : argv[++i]);
  if (flag === '--window-ms') {
    windowMs = Number(value());
    if (!Number.isInteger(windowMs) || windowMs <= 0) fail('--window-ms must be a positive integer');
  } else if (flag === '--sid') {
    sid = value();
    if (!/^[A-Za-z0-9_-]{16,64}$/.test(sid ?? '')) fail('--sid must be 16-64 base64url characters');
  } else if (flag === '-h' || flag === '--help') {
    process.stdout.write('usage: extract.mjs [--window-ms N] [--sid SID] < events.jsonl > windows.jsonl\n');
    process.exit(0);
  } else {
    fail(`unknown argument ${flag}`);
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const events = [];
Buffer.concat(chunks).toString('utf8').split('\n').forEach((line, i) => {
  if (!line.trim()) return;
  let e;
  try {
    e = JSON.parse(line);
  } catch {
    fail(`line ${i + 1}: not JSON`);
  }
  if (!e || typeof e !== 'object' || Array.isArray(e)) fail(`line ${i + 1}: not a JSON object`);
  events.push(e);
});
const out = windowsFromEvents(events, windowMs, { sid }).map((d) => JSON.stringify(d) + '\n');
process.stdout.write(out.join(''));
