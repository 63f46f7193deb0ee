"""The collector in a real browser: headless Chromium, real input, Envoy over TLS 1.3.

One module-scoped stack whose tier pools serve the demo site.  A Node driver
(``collector_js/test/browser/drive.mjs``, playwright-core on Debian's Chromium) runs one
fresh browser per session and prints what happened as JSON: every request the page
made (URL, all headers with cookies, body), every ``/api/ping`` answer, the final
``#tier``.  Human-like sessions of one user enrol them; a new human-like session of the
same user must reach tier 1; a scripted bot on another account must reach tier 3;
nothing typed may leave the page.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from e2e_client import decision_counts, reasons_between

from sidecar.demo.site import SiteFiles, site_pool_factory
from sidecar.features import DEVICES, MODALITIES
from sidecar.procs import wait_until
from sidecar.stack import Stack, StackOptions
from sidecar.telemetry import decode

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[1]
COLLECTOR = REPO / "collector_js"
DRIVER = COLLECTOR / "test" / "browser" / "drive.mjs"
CHROMIUM = Path("/usr/bin/chromium")
NODE = shutil.which("node")

USER = "alice@example.com"
BOT_USER = "mallory@example.com"
SENTENCE = "zebras juggle vermilion pancakes."
WORDS = [w.strip(".") for w in SENTENCE.split()]
ENROL_SEEDS = (101, 102, 103)
CHECK_SEED = 201
BOT_SEED = 301
DRIVE_TIMEOUT_S = 60.0
TELEMETRY_HEADER = "x-bioshard-telemetry"
COOKIE = "__bsh"

if NODE is None or not CHROMIUM.exists():
    pytest.skip("needs node and /usr/bin/chromium (`make sysdeps` installs chromium)",
                allow_module_level=True)


@dataclass
class Session:
    """One driver run (one fresh browser) and the decisions the sidecar made meanwhile."""

    name: str
    result: dict[str, Any] = field(repr=False)
    reasons: dict[tuple[str, int], int] = field(default_factory=dict)

    @property
    def answers(self) -> list[dict[str, Any]]:
        return [a for a in self.result["answers"] if a]


def _prepare_collector() -> None:
    """playwright-core and the bundle, as ``make test`` (node, bundle) would leave them."""
    assert NODE is not None
    npm = shutil.which("npm")
    if not (COLLECTOR / "node_modules" / "playwright-core").is_dir():
        assert npm, "npm is needed to install playwright-core"
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=COLLECTOR, check=True,
                       env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    if not (COLLECTOR / "dist" / "bioshard-collector.min.js").is_file():
        assert npm, "npm is needed to build the collector bundle"
        subprocess.run([npm, "run", "-s", "build"], cwd=COLLECTOR, check=True)


def drive(stack: Stack, *, user: str, mode: str, seed: int, bench: bool = False) -> Session:
    """Run one browser session through Envoy's TLS listener; returns the driver's JSON."""
    assert NODE is not None
    profile = stack.workdir / f"chromium-{mode}-{seed}"  # new and empty: a fresh browser
    profile.mkdir()
    args = {"url": stack.url("/", tls=True), "user": user, "mode": mode, "seed": seed,
            "sentence": SENTENCE, "bench": bench, "chromium": str(CHROMIUM),
            "profile_dir": str(profile)}
    before = decision_counts(stack)
    t0 = time.monotonic()
    # Own process group: on a timeout SIGTERM lets Playwright close Chromium, then
    # whatever is left of the group is killed.
    proc = subprocess.Popen([NODE, str(DRIVER), json.dumps(args)], cwd=COLLECTOR,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=DRIVE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        pytest.fail(f"browser driver timed out ({mode}, seed {seed}):\n{err[-2000:]}")
    assert proc.returncode == 0, f"browser driver failed ({mode}, seed {seed}):\n{err[-3000:]}"
    wait_learned(stack)
    result = json.loads(out)
    result["timings"]["wall_s"] = time.monotonic() - t0
    return Session(f"{mode}-{seed}", result, reasons_between(before, decision_counts(stack)))


def wait_learned(stack: Stack) -> None:
    time.sleep(0.1)  # > BIOSHARD_LEARN_DELAY_S: the last windows are due

    def idle() -> bool:
        _, health = stack.admin("GET", "/health/anomalydetection", token=None)
        return isinstance(health, dict) and health["learner_pending"] == 0

    wait_until(idle, 20, "learner idle")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _prepare_collector()
    # Learn at most one window per 4 s: consecutive requests carry overlapping snapshots of
    # the same 30 s sliding window; learning all of them collapses the model's variance
    # (production learns one per 60 s; a 16 s test session needs a shorter interval).
    env = {"BIOSHARD_LEARN_DELAY_S": "0.05", "BIOSHARD_LEARN_INTERVAL_S": "4",
           "BIOSHARD_LOG_LEVEL": "INFO"}
    opts = StackOptions(workdir=tmp_path_factory.mktemp("browser-stack"), sidecar_env=env,
                        pool_factory=site_pool_factory(SiteFiles()))
    with Stack(opts) as s:
        yield s


@pytest.fixture(scope="module")
def sessions(stack: Stack) -> dict[str, Session]:
    """Two enrolment sessions and a check session of USER, then a bot on BOT_USER."""
    out: dict[str, Session] = {}
    for i, seed in enumerate(ENROL_SEEDS):
        out[f"enrol{i}"] = drive(stack, user=USER, mode="human", seed=seed)
    out["check"] = drive(stack, user=USER, mode="human", seed=CHECK_SEED, bench=True)
    out["bot"] = drive(stack, user=BOT_USER, mode="bot", seed=BOT_SEED)
    for s in out.values():
        print(_summary(s))  # shown with -s and on failure: what each session got
    return out


def _summary(s: Session) -> str:
    rows = [(a["path"].split("reason=")[-1], a["pool"], a["score"]) for a in s.answers]
    t = s.result["timings"]
    return (f"{s.name}: final {s.result['tier_text']!r}, answers {rows}, reasons {s.reasons}, "
            f"wall {t['wall_s']:.1f}s (launch {t['launch_ms'] / 1000:.1f}s, "
            f"input {t['drive_ms'] / 1000:.1f}s)")


def test_page_sends_valid_telemetry(sessions: dict[str, Session]) -> None:
    """Every session's telemetry decodes as v1, none is bad, and humans get scored."""
    for s in sessions.values():
        assert s.result["pings"] >= 3, _summary(s)
        assert not any(r == "bad_telemetry" for r, _ in s.reasons), _summary(s)
        assert all(a["telemetry_header_seen"] is False for a in s.answers), _summary(s)
        values = [v for _, v in _telemetry_values(s.result["requests"])]
        assert values, _summary(s)
        for value in values:
            decode(value)  # raises TelemetryError on anything that is not valid v1
    for name in ("enrol0", "enrol1", "check"):
        s = sessions[name]
        # The demo page loads anonymously (and Chromium asks for /favicon.ico with the
        # collector's cookie) before the user signs in: that must not turn the signed-in
        # session's own windows into replays.
        assert not any(r == "replayed_telemetry" for r, _ in s.reasons), \
            f"own windows refused as replays after an anonymous first request: {_summary(s)}"
        assert any(r in {"ok", "enrolling"} for r, _ in s.reasons), _summary(s)


def test_enrolled_user_new_session_reaches_tier1(sessions: dict[str, Session]) -> None:
    """After two human-like sessions, a new session of the same user ends in tier 1."""
    s = sessions["check"]
    assert s.result["notes"] == SENTENCE, _summary(s)
    assert ("ok", 1) in s.reasons, _summary(s)
    assert s.result["tier_text"] == "tier1", _summary(s)
    assert s.result["tier"] == "1", _summary(s)
    assert s.result["last"]["body"]["pool"] == "tier1", _summary(s)


def test_scripted_bot_reaches_tier3(sessions: dict[str, Session]) -> None:
    """Constant-interval typing and straight constant-speed moves are sandboxed."""
    s = sessions["bot"]
    assert s.result["notes"] == SENTENCE, _summary(s)
    assert s.result["tier_text"] == "tier3", _summary(s)
    assert all(a["pool"] == "tier3" for a in s.answers if "reason=ping" in a["path"]), \
        _summary(s)
    assert ("scripted_input", 3) in s.reasons, _summary(s)
    assert all(a["pool"] == "tier3" for a in s.answers), _summary(s)


def test_typed_sentence_never_leaves_the_page(sessions: dict[str, Session]) -> None:
    """No URL, header (cookies included) or body of any request holds the typed words."""
    checked = 0
    for s in sessions.values():
        assert s.result["notes"] == SENTENCE, s.name  # it was typed, into the page
        for req in s.result["requests"]:
            assert "error" not in req, req
            blob = json.dumps([req["url"], req["headers"], req["post"]]).lower()
            assert SENTENCE.lower() not in blob
            for word in WORDS:
                assert word not in blob, (s.name, word, req["url"])
            checked += 1
    assert checked >= 20


def test_telemetry_documents_hold_only_features(sessions: dict[str, Session]) -> None:
    """Decoded documents hold only v1 names and numbers: no text, no key identities."""
    allowed_keys = {"sid", "seq", "ts", "dev", "m", "n", "f"} | set(MODALITIES)
    for spec in MODALITIES.values():
        allowed_keys |= set(spec.names)
    docs = 0
    for s in sessions.values():
        for source, value in _telemetry_values(s.result["requests"]):
            raw = _inflate(value)
            assert not any(w in raw.lower() for w in WORDS), (s.name, source)
            doc = json.loads(raw)
            keys, strings = _walk(doc)
            assert keys <= allowed_keys, (s.name, source, keys - allowed_keys)
            assert strings == {doc["sid"], doc["dev"]}, (s.name, source)
            assert doc["dev"] in DEVICES
            assert set(doc["m"]) <= set(MODALITIES)
            for mod, window in doc["m"].items():
                assert set(window["f"]) <= set(MODALITIES[mod].names), (mod, window)
            docs += 1
    assert docs >= 20


def test_extraction_cost_in_the_page(sessions: dict[str, Session]) -> None:
    """Prints the in-page cost of extractWindow over 1,000 synthetic events."""
    bench = sessions["check"].result["bench"]
    assert bench["events"] == 1000
    print(f"\nextractWindow in Chromium: {bench['median_us']:.0f} µs per 1,000 events "
          f"(median of batches; min {bench['min_us']:.0f}, max {bench['max_us']:.0f} µs, "
          f"{bench['calls']} calls)")


# -- helpers --------------------------------------------------------------------------


def _telemetry_values(requests: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(source, value) of every telemetry header and ``__bsh`` cookie the page sent."""
    out = []
    for req in requests:
        headers: Mapping[str, str] = req.get("headers", {})
        if TELEMETRY_HEADER in headers:
            out.append(("header", headers[TELEMETRY_HEADER]))
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                out.append(("cookie", value))
    return out


def _inflate(value: str) -> str:
    """The JSON text of a ``1z.``/``1j.`` value (bounded inflate)."""
    body = value[3:]
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if value.startswith("1z."):
        inflater = zlib.decompressobj(-15)
        raw = inflater.decompress(raw, 16384)
        assert not inflater.unconsumed_tail
    else:
        assert value.startswith("1j."), value[:3]
    return raw.decode()


def _walk(node: object) -> tuple[set[str], set[str]]:
    """All dict keys and all string values anywhere in a JSON document."""
    keys: set[str] = set()
    strings: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            keys.add(k)
            ks, ss = _walk(v)
            keys |= ks
            strings |= ss
    elif isinstance(node, list):
        for v in node:
            ks, ss = _walk(v)
            keys |= ks
            strings |= ss
    elif isinstance(node, str):
        strings.add(node)
    return keys, strings
