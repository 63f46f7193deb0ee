// Demo wiring: start the collector, send /api/ping on clicks, submits and activity,
// show the pool/tier/score the upstream reports.  Test hooks: window.bioshardDemo.
import { start } from '/collector/bioshard-collector.min.js';

const $ = (id) => document.getElementById(id);
const ACTIVITY_PING_MS = 3000;

const collector = start({ windowMs: 30000 });
// The signed-in user: the demo's stand-in for a real session.  Before sign-in the
// requests are anonymous (no x-user-id), so a half-typed name never owns anything.
const state = { collector, pings: 0, last: null, ping, user: '' };
window.bioshardDemo = state;

function show(res, body) {
  const tier = body && body.tier ? String(body.tier) : '';
  $('tier').textContent = body && body.pool ? body.pool : `HTTP ${res.status}`;
  $('tier').dataset.tier = tier;
  $('score').textContent = body && body.score !== undefined ? Number(body.score).toFixed(3) : '–';
  $('decision').textContent = (body && body.decision) || res.headers.get('x-bioshard-decision') || '–';
}

/** One instrumented request; resolves to the parsed upstream answer (or null). */
async function ping(reason = 'manual') {
  const res = await fetch(`/api/ping?reason=${encodeURIComponent(reason)}`, {
    headers: state.user ? { 'x-user-id': state.user } : {},
    cache: 'no-store',
  });
  let body = null;
  try {
    body = await res.json();
  } catch {
    // a denial page or an empty body: show the status only
  }
  state.pings += 1;
  state.last = { status: res.status, body };
  $('pings').textContent = String(state.pings);
  show(res, body);
  return state.last;
}

const report = (reason) => ping(reason).catch((err) => {
  $('tier').textContent = 'request failed';
  $('tier').dataset.tier = '';
  console.warn('bioshard demo:', err);
});

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  state.user = $('user').value.trim();
  report('login');
});
for (const id of ['ping', 'save']) $(id).addEventListener('click', () => report(id));

let active = false;
for (const type of ['keydown', 'pointermove', 'wheel', 'scroll', 'touchstart']) {
  window.addEventListener(type, () => { active = true; }, { capture: true, passive: true });
}
setInterval(() => {
  if (!active) return;
  active = false;
  report('activity');
}, ACTIVITY_PING_MS);
