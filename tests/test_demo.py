"""Tests for sidecar.demo: the site, the actors, the counting, and `bioshard demo` end to end."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sidecar.demo.accesslog import AccessLogTail, LogEntry, parse_line
from sidecar.demo.actors import IDENTITY_HEADER, build_cast, kind_weights
from sidecar.demo.client import Reply
from sidecar.demo.prom import Histogram, parse_check_histogram, parse_decisions
from sidecar.demo.site import HDR_POOL, HDR_UPSTREAM_DECISION, SiteFiles, serve_site
from sidecar.demo.tally import ENROLMENT, RowCounts, Tally
from sidecar.procs import tcp_open
from sidecar.telemetry import decode
from sidecar.tiers import COOKIE_TELEMETRY, HDR_DECISION, HDR_TELEMETRY
from sidecar.upstream import UpstreamServer

# -- the site ---------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> SiteFiles:
    demo, dist = tmp_path / "demo", tmp_path / "dist"
    demo.mkdir()
    dist.mkdir()
    (demo / "index.html").write_text("<h1>demo</h1>")
    (demo / "demo.js").write_text("export {};")
    (dist / "bioshard-collector.min.js").write_text("export const start = 1;")
    (tmp_path / "secret.txt").write_text("no")
    return SiteFiles(demo_dir=demo, dist_dir=dist)


@pytest.mark.parametrize(("path", "expected"), [
    ("/", "demo/index.html"),
    ("/demo.js", "demo/demo.js"),
    ("/collector/bioshard-collector.min.js", "dist/bioshard-collector.min.js"),
    ("/missing.html", None),
    ("/../secret.txt", None),
    ("/%2e%2e/secret.txt", None),
    ("/collector/../../secret.txt", None),
], ids=["index", "page-file", "collector", "missing", "dotdot", "encoded-dotdot",
        "collector-dotdot"])
def test_site_resolves_files_inside_their_roots(files: SiteFiles, path: str,
                                               expected: str | None) -> None:
    """Paths map to the page or the bundle; nothing outside the two roots is ever served."""
    got = files.resolve(path)
    root = files.demo_dir.parent.resolve()
    assert (None if got is None else got.relative_to(root).as_posix()) == expected


@pytest.fixture
def site(files: SiteFiles) -> Iterator[UpstreamServer]:
    server, thread = serve_site("tier2", "127.0.0.1", 0, files)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_site_serves_page_bundle_and_pool_json(site: UpstreamServer) -> None:
    """A tier pool serves the page and the bundle, and answers /api/* with the pool JSON."""
    base = f"http://127.0.0.1:{site.port}"
    status, hdrs, body = _get(base + "/", {HDR_DECISION: "d-1"})
    assert (status, body) == (200, b"<h1>demo</h1>")
    assert hdrs["content-type"].startswith("text/html")
    assert hdrs[HDR_POOL] == "tier2"
    assert hdrs[HDR_UPSTREAM_DECISION] == "d-1"
    status, hdrs, _ = _get(base + "/collector/bioshard-collector.min.js")
    assert status == 200 and "javascript" in hdrs["content-type"]
    status, _, body = _get(base + "/api/ping?reason=x", {HDR_DECISION: "d-2"})
    doc = json.loads(body)
    assert (status, doc["pool"], doc["decision"], doc["path"]) == (200, "tier2", "d-2",
                                                                  "/api/ping?reason=x")
    assert _get(base + "/nope.html")[0] == 404
    assert site.seen == 4


def test_site_keeps_ids_pool_plain(files: SiteFiles) -> None:
    """The IDS pool only counts mirrored requests; it does not serve the page."""
    server, thread = serve_site("ids", "127.0.0.1", 0, files)
    try:
        _, _, body = _get(f"http://127.0.0.1:{server.port}/")
        assert json.loads(body)["pool"] == "ids"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- the actors ---------------------------------------------------------------------------


def test_cast_identities() -> None:
    """Impostors present their victim's id; bots use stolen or new accounts; visitors none."""
    cast = build_cast(users=3, impostors=2, bots=4, anonymous=2, seed=0)
    ids = {a.user_id for a in cast.genuine}
    assert len(ids) == 3
    assert all(a.victim is not None and a.user_id == a.victim.user_id for a in cast.impostor)
    assert [a.replayer for a in cast.impostor] == [False, True]
    stolen = [a.user_id in ids for a in cast.bot]
    assert stolen == [False, True, True, False]
    assert all(a.user_id is None for a in cast.anonymous)
    assert kind_weights(build_cast(users=2, impostors=0, bots=1, anonymous=0, seed=0)) == \
        pytest.approx({"genuine": 0.6 / 0.72, "impostor": 0.0, "bot": 0.12 / 0.72,
                       "anonymous": 0.0})


def _telemetry(headers: dict[str, str]) -> str:
    """The telemetry value of a request, from the header or the cookie."""
    return headers.get(HDR_TELEMETRY) or headers["cookie"].removeprefix(COOKIE_TELEMETRY + "=")


def test_genuine_sessions_are_fresh_with_growing_seq() -> None:
    """A genuine user opens new sessions (fresh sid) and seq grows from 1 within each."""
    actor = build_cast(users=1, impostors=0, bots=0, anonymous=0, seed=3).genuine[0]
    seen: dict[str, list[int]] = {}
    for _ in range(40):
        req = actor.next_request()
        assert req.headers[IDENTITY_HEADER] == actor.user_id
        tel = decode(_telemetry(req.headers))
        seen.setdefault(tel.sid, []).append(tel.seq)
    assert len(seen) >= 3
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in seen.values())


def test_replayer_resends_captured_windows_verbatim() -> None:
    """A replaying impostor sends exactly a window the victim sent before."""
    cast = build_cast(users=1, impostors=2, bots=0, anonymous=0, seed=0)
    victim, replayer = cast.genuine[0], cast.impostor[1]
    sent = {_telemetry(victim.next_request().headers) for _ in range(10)}
    replays = [r for r in (replayer.next_request() for _ in range(40)) if r.action == "replay"]
    assert replays
    assert all(r.headers[HDR_TELEMETRY] in sent for r in replays)


# -- counting -----------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "expected"), [
    (Reply(200, 1, "d", 0.01), RowCounts((1, 0, 0))),
    (Reply(200, 3, "d", 0.01), RowCounts((0, 0, 1))),
    (Reply(429, None, None, 0.01), RowCounts(rate_limited=1)),
    (Reply(403, None, None, 0.01), RowCounts(denied=1)),
    (Reply(0, None, None, 0.01), RowCounts(errors=1)),
    (Reply(503, None, None, 0.01), RowCounts(errors=1)),
], ids=["tier1", "tier3", "rate-limited", "denied", "no-answer", "envoy-503"])
def test_row_counts_classify_replies(reply: Reply, expected: RowCounts) -> None:
    """A reply counts by the pool that served it, else as rate-limited, denied or error."""
    assert RowCounts().add(reply) == expected


def test_tally_joins_reasons_in_either_order() -> None:
    """Reasons join by decision id whether the log line or the reply comes first."""
    tally = Tally()
    tally.record("genuine", "own", Reply(200, 1, "a", 0.01))
    tally.attribute([LogEntry("a", "ok", 1, 200), LogEntry("b", "scripted_input", 3, 200),
                     LogEntry("z", "no_telemetry", 2, 200)])
    tally.record("bot", "no_profile", Reply(200, 3, "b", 0.01))
    tally.record(ENROLMENT, "enrol", Reply(200, 1, "c", 0.01))
    snap = tally.snapshot()
    assert snap.reasons["genuine"] == {"ok": 1}
    assert snap.reasons["bot"] == {"scripted_input": 1}
    assert snap.unattributed == {"no_telemetry": 1}
    assert snap.rows["bot"].tiers == (0, 0, 1)
    assert snap.actions["bot"]["no_profile"].total == 1
    assert snap.requests == 3
    assert len(snap.latencies_s) == 2  # enrolment is not in the mixed-traffic latencies
    assert snap.awaiting_log == 1


def test_access_log_tail_waits_for_complete_lines(tmp_path: Path) -> None:
    """Only complete JSON lines with a decision are returned; a partial line waits."""
    path = tmp_path / "envoy.log"
    line = json.dumps({"decision": "d1", "reason": "ok", "tier": 1, "status": 200})
    path.write_text("[warning] envoy says hi\n" + line + "\n" + line[:10])
    tail = AccessLogTail(path)
    assert tail.read() == [LogEntry("d1", "ok", 1, 200)]
    with path.open("a") as f:
        f.write(line[10:].replace("d1", "d2") + "\n")
    assert [e.decision for e in tail.read()] == ["d2"]
    assert parse_line('{"decision": null, "reason": "ok"}') is None


METRICS = """\
bioshard_decisions_total{reason="ok",tier="1"} 90
bioshard_decisions_total{reason="scripted_input",tier="3"} 10
bioshard_check_seconds_bucket{le="0.001"} 50
bioshard_check_seconds_bucket{le="0.002"} 90
bioshard_check_seconds_bucket{le="0.004"} 100
bioshard_check_seconds_bucket{le="+Inf"} 100
bioshard_check_seconds_count 100
"""


def test_parse_metrics() -> None:
    """Decisions by (reason, tier) and the Check histogram are read from /metrics."""
    assert parse_decisions(METRICS) == {("ok", 1): 90, ("scripted_input", 3): 10}
    h = parse_check_histogram(METRICS)
    assert h.bounds == (0.001, 0.002, 0.004, math.inf)
    assert h.count == 100


def _naive_quantile(bounds: list[float], samples: np.ndarray, q: float) -> float:
    """histogram_quantile by hand: find the bucket of rank q·n, interpolate linearly."""
    counts = [int(np.sum(samples <= b)) for b in bounds]
    rank = q * len(samples)
    lo, below = 0.0, 0
    for b, c in zip(bounds, counts, strict=True):
        if c >= rank and c > below:
            return lo + (b - lo) * (rank - below) / (c - below)
        lo, below = b, c
    return lo


@pytest.mark.parametrize("q", [0.1, 0.5, 0.9, 0.99], ids=["p10", "p50", "p90", "p99"])
def test_histogram_quantile_matches_naive_reference(q: float) -> None:
    """The quantile estimate equals a by-hand interpolation and lies in the right bucket."""
    rng = np.random.default_rng(0)
    samples = rng.lognormal(mean=-7.0, sigma=0.8, size=2000)
    bounds = [0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01]
    counts = [int(np.sum(samples <= b)) for b in bounds] + [len(samples)]
    h = Histogram((*bounds, math.inf), tuple(counts))
    got = h.quantile(q)
    assert got == pytest.approx(_naive_quantile(bounds, samples, q))
    true = float(np.quantile(samples, q))
    i = int(np.searchsorted(bounds, true))
    assert (bounds[i - 1] if i else 0.0) <= got <= bounds[i]
    assert Histogram((), ()).quantile(q) is None


# -- `bioshard demo` end to end -----------------------------------------------------------


def _demo_argv(workdir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "sidecar", "demo", "--no-live", "--json", "--users", "3",
            "--impostors", "2", "--bots", "2", "--anonymous", "1", "--enrol-windows", "30",
            "--rate", "25", "--seed", "0", "--workdir", str(workdir), *extra]


def _leftovers(workdir: Path) -> list[str]:
    """Command lines of live processes that mention the work directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError, PermissionError):
            continue
        if str(workdir) in cmd and state != "Z":
            found.append(cmd)
    return found


def _assert_nothing_left(summary: dict[str, Any], workdir: Path) -> None:
    assert _leftovers(workdir) == []
    assert [p for p in summary["ports"] if tcp_open("127.0.0.1", p)] == []


def _share(row: dict[str, Any], *tiers: int) -> float:
    return sum(row[f"tier{t}"] for t in tiers) / row["total"]


@pytest.mark.e2e
def test_demo_routes_each_kind_and_cleans_up(tmp_path: Path) -> None:
    """A 20 s demo: genuine users mostly tier 1, impostors tiers 2-3, bots tier 3; no leftovers."""
    workdir = tmp_path / "demo"
    proc = subprocess.run(_demo_argv(workdir, "--duration", "20"), capture_output=True,
                          text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    c = summary["confusion"]
    assert c["genuine"]["total"] >= 100 and c["impostor"]["total"] >= 20
    assert c["bot"]["total"] >= 10
    assert _share(c["genuine"], 1) >= 0.85, c["genuine"]
    assert _share(c["impostor"], 2, 3) >= 0.6, c["impostor"]
    assert _share(c["bot"], 3) == 1.0, c["bot"]
    assert summary["reasons"]["bot"] == {"scripted_input": c["bot"]["total"]}
    assert summary["by_action"]["impostor"]["replay"]["tier3"] == \
        summary["by_action"]["impostor"]["replay"]["total"]
    assert summary["enrolment"]["enrolled_users"] == 3
    assert summary["check_latency_ms"]["count"] >= c["genuine"]["total"]
    assert summary["stopped_by"] == "duration"
    assert "Where each kind of traffic was routed" in proc.stderr
    _assert_nothing_left(summary, workdir)


@pytest.mark.e2e
def test_demo_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    """SIGINT during the mixed traffic stops the demo with its summary and exit code 0."""
    workdir = tmp_path / "demo"
    err_path = tmp_path / "stderr.txt"
    with err_path.open("w") as err:
        proc = subprocess.Popen(_demo_argv(workdir), stdout=subprocess.PIPE, stderr=err,
                                text=True)
        try:
            deadline = time.monotonic() + 45
            while "mixed traffic starts" not in err_path.read_text():
                assert proc.poll() is None, err_path.read_text()[-3000:]
                assert time.monotonic() < deadline, "mixed traffic never started"
                time.sleep(0.2)
            time.sleep(2)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err_path.read_text()[-3000:]
    summary = json.loads(out)
    assert summary["stopped_by"] == "SIGINT"
    assert summary["confusion"]["genuine"]["total"] > 0
    assert "bioshard demo summary" in err_path.read_text()
    _assert_nothing_left(summary, workdir)
