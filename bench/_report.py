"""The serving benchmark's report: comparisons, targets, text table, JSON dict and plot.

Works on plain dicts (``dataclasses.asdict`` of the results) so that a saved JSON can be
re-rendered: ``python bench/_report.py bench/out/serving-….json``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

TARGET_THROUGHPUT_VS_NOOP: Final = 0.9
TARGET_P99_ADDED_US: Final = 1000.0
TARGET_SCORING_US: Final = 20.0
_SUSTAIN_MARGIN: Final = 1.1
_OUT: Final = Path(__file__).with_name("out")
_SCORING_KEYS: Final = ("score_window_us", "us_per_check", "per_check_us", "score_us",
                        "mean_us")

Result = Mapping[str, Any]


def _phase(result: Result, kind: str) -> Mapping[str, Any] | None:
    phase: Mapping[str, Any] | None = result.get(kind)
    return phase


def _fmt_us(us: float | None) -> str:
    if us is None or (isinstance(us, float) and math.isnan(us)):
        return "-"
    return f"{us / 1000:.2f}" if us >= 1000 else f"{us / 1000:.3f}"


def one_line(result: Any) -> str:
    """A one-line summary of a :class:`serving.ScenarioResult` (object or dict)."""
    r = result if isinstance(result, Mapping) else _asdict(result)
    if r.get("skipped"):
        return f"skipped: {r['skipped']}"
    lat, thr = r["latency"], r["throughput"]
    cpu = thr.get("authz_cpu_us_per_check")
    parts = [f"max {thr['rps']:.0f} req/s",
             f"@{lat['extra']['rate']:.0f}/s p50 {_fmt_us(lat['p50_us'])} ms "
             f"p99 {_fmt_us(lat['p99_us'])} ms p99.9 {_fmt_us(lat['p999_us'])} ms"]
    if cpu is not None:
        parts.append(f"authz {cpu:.0f} µs CPU/Check")
    if "learned" in lat["extra"] and "learned" in thr["extra"]:
        parts.append(f"learned {lat['extra']['learned']:.0f} / {thr['extra']['learned']:.0f}")
    if "gc_pause_max_ms" in thr["extra"]:
        parts.append(f"GC pause max {thr['extra']['gc_pause_max_ms']:.0f} ms")
    if thr["reasons"]:
        parts.append("reasons " + _reason_text(_merge(lat["reasons"], thr["reasons"])))
    return "; ".join(parts)


def _asdict(obj: Any) -> dict[str, Any]:
    import dataclasses

    d: dict[str, Any] = dataclasses.asdict(obj)
    return d


def _merge(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted(set(a) | set(b))}


def _reason_text(reasons: Mapping[str, int]) -> str:
    total = sum(reasons.values())
    if not total:
        return "-"
    ranked = sorted(reasons.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in ranked)


def comparisons(results: Sequence[Result]) -> dict[str, dict[str, float | None]]:
    """Per scenario: throughput ratios against scenarios 1 and 2, p99 added over 1."""
    by_name = {r["name"]: r for r in results if not r.get("skipped")}
    base, noop = by_name.get("envoy"), by_name.get("noop")
    out: dict[str, dict[str, float | None]] = {}
    for name, r in by_name.items():
        thr, lat = r["throughput"], r["latency"]
        row: dict[str, float | None] = {"throughput_vs_envoy": None, "throughput_vs_noop": None,
                                        "p50_added_vs_envoy_us": None,
                                        "p99_added_vs_envoy_us": None,
                                        "p999_added_vs_envoy_us": None}
        if base is not None and base["throughput"]["rps"] > 0:
            row["throughput_vs_envoy"] = thr["rps"] / base["throughput"]["rps"]
            for q in ("p50", "p99", "p999"):
                row[f"{q}_added_vs_envoy_us"] = lat[f"{q}_us"] - base["latency"][f"{q}_us"]
        if noop is not None and noop["throughput"]["rps"] > 0:
            row["throughput_vs_noop"] = thr["rps"] / noop["throughput"]["rps"]
        out[name] = row
    return out


def scoring_benchmark(out_dir: Path = _OUT) -> dict[str, Any] | None:
    """The newest ``bench/out/scoring*.json`` (``bench/bench_scoring.py``), if any."""
    files = sorted(out_dir.glob("scoring*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        return None
    try:
        data = json.loads(files[-1].read_text())
    except (OSError, ValueError):
        return {"file": str(files[-1]), "per_check_us": None}
    return {"file": str(files[-1]), "per_check_us": _find_number(data, _SCORING_KEYS)}


def _find_number(data: Any, keys: Sequence[str]) -> float | None:
    if isinstance(data, Mapping):
        for key in keys:
            value = data.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        for value in data.values():
            found = _find_number(value, keys)
            if found is not None:
                return found
    return None


def targets(results: Sequence[Result], comp: Mapping[str, Mapping[str, float | None]],
            scoring: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The three targets of the brief, each with its measured value and verdict."""
    sq = comp.get("bioshard-sqlite", {})
    by_name = {r["name"]: r for r in results if not r.get("skipped")}
    pipeline = None
    if "bioshard-sqlite" in by_name:
        pipeline = by_name["bioshard-sqlite"]["latency"].get("pipeline_mean_us")
    scoring_us = scoring.get("per_check_us") if scoring else None
    rows = [
        ("throughput(3) / throughput(2)", sq.get("throughput_vs_noop"), ">=",
         TARGET_THROUGHPUT_VS_NOOP, "", None),
        ("p99 added by (3) over (1) at the fixed rate", sq.get("p99_added_vs_envoy_us"), "<=",
         TARGET_P99_ADDED_US, "µs", None),
        ("scoring per Check (score_window, plan cached)", scoring_us, "<=", TARGET_SCORING_US,
         "µs", _scoring_note(scoring)),
        ("whole decision pipeline per Check, in bioshard (/metrics)", pipeline, "info",
         None, "µs", "includes decode, replay check, cache/store read and scoring"),
    ]
    out = []
    for name, value, op, limit, unit, note in rows:
        ok: bool | None = None
        if value is not None and limit is not None:
            ok = value >= limit if op == ">=" else value <= limit
        out.append({"target": name, "value": value, "op": op, "limit": limit, "unit": unit,
                    "ok": ok, "note": note})
    return out


def _scoring_note(scoring: Mapping[str, Any] | None) -> str | None:
    if not scoring or scoring.get("per_check_us") is None:
        return "not measured"
    if "file" in scoring:
        return f"from {Path(scoring['file']).name}"
    after = scoring.get("after_learn_us")
    return (f"in-process CPU; {after:.0f} µs when the model learned since its last score"
            if after is not None else None)


def build(*, cfg: Mapping[str, Any], machine: Mapping[str, Any], timings: Mapping[str, float],
          scoring: Mapping[str, float], results: Sequence[Result], started: str,
          command: str) -> dict[str, Any]:
    """The JSON document of one run.

    ``scoring`` is the in-process ``score_window`` measurement of the run
    (``cached_plan_us``, ``after_learn_us``); a ``bench/out/scoring*.json`` from
    ``bench/bench_scoring.py``, when there is one, is preferred for the target.
    """
    comp = comparisons(results)
    external = scoring_benchmark()
    measured: dict[str, Any] = {"source": "serving.py, in-process score_window", **scoring,
                                "per_check_us": scoring.get("cached_plan_us")}
    chosen = external if external and external.get("per_check_us") is not None else measured
    return {
        "benchmark": "bioshard serving cost", "started": started, "command": command,
        "machine": dict(machine), "config": dict(cfg), "timings_s": dict(timings),
        "scenarios": list(results), "comparison": comp,
        "scoring": {"measured": measured, "bench_scoring": external},
        "targets": [] if cfg.get("smoke") else targets(results, comp, chosen),
    }


def render_text(report: Mapping[str, Any]) -> str:
    """The human-readable table of a report."""
    cfg, comp = report["config"], report["comparison"]
    lines = ["", f"{'scenario':<28} {'max req/s':>9} {'vs 1':>5} {'vs 2':>5} "
             f"{'p50 ms':>7} {'p99 ms':>7} {'p99.9':>7} {'+p99 ms':>8} "
             f"{'CPU µs/Check':>13} {'RSS MiB':>8}"]
    for r in report["scenarios"]:
        if r.get("skipped"):
            lines.append(f"{r['label']:<28} skipped: {r['skipped']}")
            continue
        c, thr, lat = comp.get(r["name"], {}), r["throughput"], r["latency"]
        cpu_l, cpu_t = lat["authz_cpu_us_per_check"], thr["authz_cpu_us_per_check"]
        cpu = "-" if cpu_l is None else f"{cpu_l:.0f} / {cpu_t or 0:.0f}"
        rss = "-" if r.get("peak_rss_kib") is None else f"{r['peak_rss_kib'] / 1024:.0f}"
        lines.append(
            f"{r['label']:<28} {thr['rps']:>9.0f} {_ratio(c.get('throughput_vs_envoy')):>5} "
            f"{_ratio(c.get('throughput_vs_noop')):>5} {_fmt_us(lat['p50_us']):>7} "
            f"{_fmt_us(lat['p99_us']):>7} {_fmt_us(lat['p999_us']):>7} "
            f"{_fmt_us(c.get('p99_added_vs_envoy_us')):>8} {cpu:>13} {rss:>8}")
    lines += _extra_rate_lines(report)
    loads = [f"{r['name']} {r['loadavg_before'][0]:.1f}" for r in report["scenarios"]
             if r.get("loadavg_before")]
    if loads:
        lines.append("1-min load average before each scenario (other work on the machine "
                     f"skews every number): {', '.join(loads)}")
    lines.append(f"(max req/s: wrk -c {cfg['connections']} -t {cfg['threads']} "
                 f"-d {cfg['throughput_s']:g}s; latency: open loop at {cfg['rate']:g} req/s "
                 f"for {cfg['latency_s']:g} s; CPU µs/Check: at the fixed rate / at max; "
                 f"RSS: peak)")
    for r in report["scenarios"]:
        if r.get("skipped") or not r["latency"]["reasons"]:
            continue
        lines.append(f"reasons {r['name']}: fixed rate "
                     f"{_reason_text(r['latency']['reasons'])}; max "
                     f"{_reason_text(r['throughput']['reasons'])}")
        for phase in (r["latency"], r["throughput"]):
            if phase["undecided"] or phase["errors"]:
                lines.append(f"  WARNING {r['name']} {phase['kind']}: {phase['errors']} errors, "
                             f"{phase['undecided']} requests passed without a decision")
            if (phase["kind"] == "throughput"
                    and phase["rps"] < _SUSTAIN_MARGIN * cfg["rate"]):
                lines.append(f"  WARNING {r['name']}: its maximum ({phase['rps']:.0f} req/s) is "
                             f"below the fixed rate ({cfg['rate']:g} req/s): the latency "
                             "figures are queueing, not service time")
            if phase["extra"].get("wrapped"):
                lines.append(f"  WARNING {r['name']}: wrk ran out of distinct requests "
                             f"({phase['extra']['wrapped']} wraps): raise pool_rps")
    for t in report["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[t["ok"]]
        value = "-" if t["value"] is None else f"{t['value']:.3g}{t['unit']}"
        limit = "" if t["limit"] is None else f" (target {t['op']} {t['limit']:g}{t['unit']})"
        note = f"  [{t['note']}]" if t["note"] else ""
        lines.append(f"{verdict:<4} {t['target']}: {value}{limit}{note}")
    return "\n".join(lines)


def _extra_rate_lines(report: Mapping[str, Any]) -> list[str]:
    """Latency at the further fixed rates: one line per rate and scenario."""
    done = [r for r in report["scenarios"] if not r.get("skipped")]
    base = next((r for r in done if r["name"] == "envoy"), None)
    lines: list[str] = []
    for i, rate in enumerate(report["config"].get("extra_rates", ())):
        lines.append(f"latency at {rate:g} req/s (open loop):")
        for r in done:
            phase = r["latency_extra"][i]
            added = ""
            if base is not None:
                delta = phase["p99_us"] - base["latency_extra"][i]["p99_us"]
                added = f"  +p99 vs 1: {_fmt_us(delta)} ms"
            lines.append(f"  {r['label']:<26} p50 {_fmt_us(phase['p50_us'])} ms, "
                         f"p99 {_fmt_us(phase['p99_us'])} ms, "
                         f"p99.9 {_fmt_us(phase['p999_us'])} ms{added}")
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def plot(report: Mapping[str, Any], path: Path) -> Path:
    """Three panels: max throughput, latency percentiles at the fixed rate, CPU per Check."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in report["scenarios"] if not r.get("skipped")]
    labels = [r["label"] for r in done]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    ax = axes[0]
    ax.bar(range(len(done)), [r["throughput"]["rps"] for r in done], color="tab:blue")
    ax.set_xticks(range(len(done)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("requests/s")
    ax.set_title(f"max throughput (wrk -c {report['config']['connections']})")
    ax = axes[1]
    qs = ("p50_us", "p99_us", "p999_us")
    extra_rates = report["config"].get("extra_rates", ())
    for k, r in enumerate(done):
        color = f"C{k}"
        ax.plot(["p50", "p99", "p99.9"], [r["latency"][q] / 1000 for q in qs], marker="o",
                color=color, label=f"{r['label']} @{report['config']['rate']:g}/s")
        for i, rate in enumerate(extra_rates):
            ax.plot(["p50", "p99", "p99.9"], [r["latency_extra"][i][q] / 1000 for q in qs],
                    marker="x", linestyle="--", color=color, label=f"@{rate:g}/s")
    ax.set_yscale("log")
    ax.set_ylabel("latency, ms (log)")
    rates = ", ".join(f"{r:g}" for r in (report["config"]["rate"], *extra_rates))
    ax.set_title(f"latency at {rates} req/s (open loop)")
    ax.legend(fontsize=7, ncol=2 if extra_rates else 1)
    ax = axes[2]
    with_authz = [r for r in done if r["latency"]["authz_cpu_us_per_check"] is not None]
    xs = range(len(with_authz))
    ax.bar([x - 0.2 for x in xs], [r["latency"]["authz_cpu_us_per_check"] for r in with_authz],
           width=0.4, label="at fixed rate")
    ax.bar([x + 0.2 for x in xs],
           [r["throughput"]["authz_cpu_us_per_check"] or 0 for r in with_authz],
           width=0.4, label="at max throughput")
    ax.set_xticks(list(xs), [r["label"] for r in with_authz], rotation=20, ha="right",
                  fontsize=8)
    ax.set_ylabel("ext_authz server CPU µs per Check")
    ax.set_title("authz CPU per Check")
    ax.legend(fontsize=8)
    fig.suptitle(f"bioshard serving cost — {report['machine'].get('nproc')} cores, "
                 f"{report['started']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    doc = json.loads(Path(sys.argv[1]).read_text())
    print(render_text(doc))
