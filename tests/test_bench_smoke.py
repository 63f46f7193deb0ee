"""Serving benchmark (bench/serving.py): its pieces, and a real --smoke run end to end."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from sidecar.telemetry import decode
from sidecar.upstream import running_upstream

BENCH = Path(__file__).resolve().parents[1] / "bench"


def bench(module: str) -> ModuleType:
    """Import a module of ``bench/`` (a directory of scripts, not a package)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(module)


def _clusters(config: dict[str, Any]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for cluster in config["static_resources"]["clusters"]:
        ports = {ep["endpoint"]["address"]["socket_address"]["port_value"]
                 for group in cluster["load_assignment"]["endpoints"]
                 for ep in group["lb_endpoints"]}
        out[cluster["name"]] = ports
    return out


@pytest.mark.parametrize(("authz_port", "with_authz"), [(None, False), (7001, True)],
                         ids=["envoy-only", "with-ext-authz"])
def test_proxy_config_scenarios(authz_port: int | None, with_authz: bool) -> None:
    """Every pool points at the one upstream; ext_authz is there only when asked for."""
    setups = bench("_envoy_setups")
    config = setups.proxy_config(http_port=7000, admin_port=7002, upstream_port=7003,
                                 authz_port=authz_port)
    assert setups.has_ext_authz(config) is with_authz
    clusters = _clusters(config)
    for pool in ("tier1", "tier2", "tier3", "ids"):
        assert clusters[pool] == {7003}
    if with_authz:
        assert clusters["bioshard_sidecar"] == {7001}
    assert "access_log" not in json.dumps(config)


def test_parse_wrk_output() -> None:
    """The Lua ``done`` line becomes a WrkResult; errors of every kind are summed."""
    load = bench("_load")
    stdout = ("Running 1s test\n"
              'WRK_JSON {"requests": 3000, "duration_us": 1500000, "bytes": 1, '
              '"connect_errors": 1, "read_errors": 2, "write_errors": 0, "status_errors": 3, '
              '"timeouts": 4, "mean_us": 900.5, "p50_us": 800, "p99_us": 2000, '
              '"p999_us": 3000, "max_us": 4000, "wrapped": 0}\n')
    result = load.parse_wrk_output(stdout, connections=8, threads=1)
    assert (result.requests, result.errors, result.p99_us) == (3000, 10, 2000.0)
    assert result.rps == pytest.approx(2000.0)
    with pytest.raises(load.LoadToolError):
        load.parse_wrk_output("no result here", connections=8, threads=1)


def test_sidecar_metrics_difference() -> None:
    """Decisions by reason and the pipeline time are read from /metrics and differenced."""
    observe = bench("_observe")
    before = observe.parse_sidecar_metrics(
        'bioshard_decisions_total{reason="ok",tier="1"} 10\n'
        "bioshard_check_seconds_sum 0.010000\nbioshard_check_seconds_count 10\n")
    after = observe.parse_sidecar_metrics(
        'bioshard_decisions_total{reason="ok",tier="1"} 110\n'
        'bioshard_decisions_total{reason="enrolling",tier="2"} 5\n'
        "bioshard_check_seconds_sum 0.115000\nbioshard_check_seconds_count 115\n")
    delta = after.minus(before)
    assert delta.reasons == {"enrolling": 5, "ok": 100}
    assert delta.tiers == {1: 100, 2: 5}
    assert delta.mean_check_us == pytest.approx(1000.0)


def test_telemetry_pool_values_are_fresh_and_valid() -> None:
    """Each pool value decodes and has a (sid, seq) of its own; each user keeps one session."""
    workload = bench("_workload")
    bank = workload.window_bank(3, per_persona=2)
    pairs = list(workload.telemetry_pool(5, 23, bank, seed=0, ts_ms=1_764_086_400_000))
    windows = [(user, decode(value)) for user, value in pairs]
    keys = {(w.sid, w.seq) for _, w in windows}
    assert len(keys) == len(pairs)
    sessions = {user: {w.sid for u, w in windows if u == user} for user, _ in windows}
    assert all(len(sids) == 1 for sids in sessions.values())
    assert {user for user, _ in pairs} == {workload.user_id(u) for u in range(5)}
    assert all(w.modalities for _, w in windows)


def test_open_loop_generator_against_a_real_server() -> None:
    """Every scheduled request is answered once, at the asked rate, with its latency kept."""
    openloop = bench("_openloop")
    with running_upstream("tier1") as server:
        requests = [openloop.http_get("127.0.0.1", server.port, f"/r/{i}", [("x-n", str(i))])
                    for i in range(10)]
        result = openloop.run_open_loop("127.0.0.1", server.port, requests, rate=200.0,
                                        duration_s=0.5, warm_connections=2,
                                        max_connections=4)
    assert (result.sent, result.completed, result.errors) == (100, 100, 0)
    assert result.connections <= 4
    assert result.duration_s == pytest.approx(0.5, abs=0.25)
    assert 0 < result.percentile_us(50) <= result.percentile_us(99)
    assert server.seen == 100


def test_comparisons_and_targets() -> None:
    """Ratios are against scenarios 1 and 2; the targets say PASS/FAIL from them."""
    report = bench("_report")

    def result(name: str, rps: float, p99: float) -> dict[str, Any]:
        phase = {"rps": rps, "p50_us": p99 / 2, "p99_us": p99, "p999_us": p99 * 2,
                 "pipeline_mean_us": 50.0}
        return {"name": name, "latency": phase, "throughput": phase}

    results = [result("envoy", 10_000, 1_000), result("noop", 4_000, 1_500),
               result("bioshard-sqlite", 3_800, 1_800)]
    comp = report.comparisons(results)
    assert comp["bioshard-sqlite"]["throughput_vs_noop"] == pytest.approx(0.95)
    assert comp["bioshard-sqlite"]["p99_added_vs_envoy_us"] == pytest.approx(800)
    verdicts = [t["ok"] for t in report.targets(results, comp, {"per_check_us": 25.0})]
    assert verdicts[:3] == [True, True, False]


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (apt-get install wrk)")
def test_smoke_run(tmp_path: Path) -> None:
    """``serving.py --smoke`` runs scenarios 1-3 for real and writes its JSON and PNG."""
    proc = subprocess.run(
        [sys.executable, str(BENCH / "serving.py"), "--smoke", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (json_path,) = tmp_path.glob("serving-*.json")
    assert list(tmp_path.glob("serving-*.png"))
    report = json.loads(json_path.read_text())
    names = [s["name"] for s in report["scenarios"]]
    assert names == ["envoy", "noop", "bioshard-sqlite"]
    assert report["targets"] == []
    for scenario in report["scenarios"]:
        for phase in (scenario["latency"], scenario["throughput"]):
            assert phase["errors"] == 0 and phase["undecided"] == 0, scenario["name"]
            assert phase["rps"] > 0
    bioshard = report["scenarios"][2]
    reasons = bioshard["throughput"]["reasons"]
    assert reasons.get("ok", 0) >= 0.9 * sum(reasons.values()), reasons
    assert bioshard["latency"]["authz_cpu_us_per_check"] > 0
