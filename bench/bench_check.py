"""Check latency inside the sidecar: parse the CheckRequest bytes, run the pipeline, build and
serialise the CheckResponse — everything a Check costs except gRPC transport.

    python bench/bench_check.py [--users 2000] [--requests 20000] [--store sqlite|redis://…]

Profiles are enrolled through the real learner into a real SQLite store (in a temp dir);
requests then spread over the users with fresh, realistic telemetry (unique sid/seq).
Prints p50 / p99 / p99.9 for cache-warm requests and for cache misses (store read +
decrypt + profile decode), and the reason mix.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from envoy.service.auth.v3 import external_auth_pb2 as authz

from sidecar.config import load_settings
from sidecar.crypto import generate_dev_keys
from sidecar.pipeline import Pipeline
from sidecar.scoring import Persona, synthetic_sid, synthetic_window
from sidecar.server import AuthorizationServicer
from sidecar.store import open_store
from sidecar.telemetry import encode_deflate


def request_bytes(user: str, value: str, rid: str) -> bytes:
    req = authz.CheckRequest()
    http = req.attributes.request.http
    http.method, http.path, http.host, http.protocol = "GET", "/api/ping", "shop", "HTTP/1.1"
    for k, v in {":authority": "shop", ":method": "GET", ":path": "/api/ping",
                 "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/156", "accept": "*/*",
                 "x-request-id": rid, "x-user-id": user,
                 "x-bioshard-telemetry": value}.items():
        http.headers[k] = v
    return req.SerializeToString()


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000, help="enrolled users")
    ap.add_argument("--enrol-windows", type=int, default=12, help="windows learned per user")
    ap.add_argument("--requests", type=int, default=20000, help="timed requests")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bioshard-bench-"))
    keys = generate_dev_keys()
    settings = load_settings(env={"BIOSHARD_LEARN_DELAY_S": "3600",
                                  "BIOSHARD_LEARN_INTERVAL_S": "0",
                                  "BIOSHARD_CACHE_TTL_S": "3600"})
    store = open_store(f"sqlite:///{tmp / 'p.db'}", keys.keyring)
    pipeline = Pipeline(settings, pseudonymizer=keys.pseudonymizer(), store=store)
    servicer = AuthorizationServicer(pipeline)
    rng = np.random.default_rng(0)
    personas = [Persona.human(i) for i in range(args.users)]
    sessions = [(synthetic_sid(rng), 0) for _ in personas]

    def value(i: int) -> str:
        sid, seq = sessions[i]
        sessions[i] = (sid, seq + 1)
        return encode_deflate(synthetic_window(personas[i], rng, sid=sid, seq=seq + 1,
                                               ts_ms=int(time.time() * 1000)))

    t0 = time.perf_counter()
    for _ in range(args.enrol_windows):
        for i in range(args.users):
            servicer.Check(authz.CheckRequest.FromString(
                request_bytes(f"user-{i}", value(i), f"e{i}")), None)
        pipeline.learner.flush(all_pending=True)
    enrol_s = time.perf_counter() - t0

    # Pre-build requests so the timing covers only what the sidecar does per Check.
    order = rng.integers(0, args.users, size=args.requests)
    payloads = [request_bytes(f"user-{i}", value(int(i)), f"r{n}") for n, i in enumerate(order)]
    warm: list[float] = []
    reasons: Counter[str] = Counter()
    for raw in payloads:
        s = time.perf_counter()
        resp = servicer.Check(authz.CheckRequest.FromString(raw), None)
        resp.SerializeToString()
        warm.append(time.perf_counter() - s)
        reasons[resp.dynamic_metadata.fields["reason"].string_value] += 1

    # Cache misses: fresh windows (the ones above are replays now), profile evicted first.
    n_cold = min(2000, args.requests)
    cold_payloads = [request_bytes(f"user-{i}", value(int(i)), f"c{n}")
                     for n, i in enumerate(order[:n_cold])]
    cold: list[float] = []
    for n, raw in enumerate(cold_payloads):
        pipeline.cache.invalidate(pipeline.pseudonym(f"user-{int(order[n])}"))
        s = time.perf_counter()
        servicer.Check(authz.CheckRequest.FromString(raw), None).SerializeToString()
        cold.append(time.perf_counter() - s)
    pipeline.close()

    out = {
        "users": args.users, "requests": args.requests, "enrol_seconds": round(enrol_s, 1),
        "warm_us": {"p50": pct(warm, 50), "p99": pct(warm, 99), "p99.9": pct(warm, 99.9)},
        "cache_miss_us": {"p50": pct(cold, 50), "p99": pct(cold, 99)},
        "reasons": dict(reasons),
        "request_bytes": len(payloads[0]),
    }
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        w, c = out["warm_us"], out["cache_miss_us"]
        print(f"Check inside the sidecar ({args.users} users, {args.requests} requests, "
              f"CheckRequest {out['request_bytes']} B)")
        print(f"  cache warm : p50 {w['p50']:7.1f} µs   p99 {w['p99']:7.1f} µs   "
              f"p99.9 {w['p99.9']:7.1f} µs")
        print(f"  cache miss : p50 {c['p50']:7.1f} µs   p99 {c['p99']:7.1f} µs")
        print(f"  reasons    : {dict(reasons)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
