"""Check latency while the learner works off a burst: learning on a thread or in the worker.

    python bench/bench_learn_burst.py [--users 2000] [--rate 400] [--learn-worker both]

In one process, without gRPC: users are enrolled through the real pipeline and learner
(SQLite store in a temp dir); then the learner is started, one learnable window per
user is queued at once (a burst, as after a restart or a traffic spike), and a second
thread sends Checks of already-enrolled users at a fixed rate meanwhile.  Prints the
latency of those Checks (from their scheduled time, so a stall counts in full), how
many windows were learned, and the garbage-collection pauses seen.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from sidecar.config import load_settings
from sidecar.crypto import generate_dev_keys
from sidecar.gc_policy import GcPauses, GcPolicy
from sidecar.pipeline import AuthInput, Pipeline
from sidecar.scoring import Persona, synthetic_sid, synthetic_window
from sidecar.store import open_store
from sidecar.telemetry import encode_deflate


def run(users: int, rate: float, checks: int, worker: bool, gc_policy: bool) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="bioshard-burst-"))
    keys = generate_dev_keys()
    settings = load_settings(env={
        "BIOSHARD_LEARN_DELAY_S": "0", "BIOSHARD_LEARN_INTERVAL_S": "0",
        "BIOSHARD_CACHE_TTL_S": "3600", "BIOSHARD_LEARN_WORKER": str(worker).lower()})
    p = Pipeline(settings, pseudonymizer=keys.pseudonymizer(),
                 store=open_store(f"sqlite:///{tmp / 'p.db'}", keys.keyring))
    rng = np.random.default_rng(0)
    personas = [Persona.human(i % 200) for i in range(users)]
    sessions = [[synthetic_sid(rng), 0] for _ in range(users)]

    def value(i: int) -> str:
        sessions[i][1] = int(sessions[i][1]) + 1
        return encode_deflate(synthetic_window(personas[i], rng, sid=str(sessions[i][0]),
                                               seq=int(sessions[i][1]),
                                               ts_ms=int(time.time() * 1000)))

    def check(i: int, v: str) -> None:
        p.check(AuthInput(user_id=f"user-{i}", telemetry=v, telemetry_source="header"))

    for _ in range(8):  # enrol every user (learned synchronously)
        for i in range(users):
            check(i, value(i))
        p.learner.flush(all_pending=True)
    probes = [(int(i), value(int(i))) for i in rng.integers(0, users, size=checks)]
    burst = [(i, value(i)) for i in range(users)]
    policy = GcPolicy() if gc_policy else None
    pauses = policy.pauses if policy is not None else GcPauses()
    if policy is not None:
        policy.start()
    else:
        pauses.start()
    p.start()
    latency: list[float] = []

    def prober() -> None:
        t0 = time.perf_counter()
        for n, (i, v) in enumerate(probes):
            due = t0 + n / rate
            while time.perf_counter() < due:
                time.sleep(0.0005)
            check(i, v)
            latency.append(time.perf_counter() - due)

    thread = threading.Thread(target=prober, name="prober")
    thread.start()
    for i, v in burst:  # the burst: one learnable window per user, queued at once
        check(i, v)
    thread.join()
    deadline = time.monotonic() + 120
    while p.learner.pending and time.monotonic() < deadline:
        time.sleep(0.05)
    applied = p.learner.applied
    p.close()
    if policy is not None:
        policy.stop()
    else:
        pauses.stop()
    a = np.array(latency) * 1e3
    return (f"learn_worker={str(worker).lower():5} gc_policy={str(gc_policy).lower():5}  "
            f"Check latency p50 {np.percentile(a, 50):6.2f} ms  p99 {np.percentile(a, 99):7.2f} ms"
            f"  max {a.max():7.1f} ms  | learned {applied} (enrolment + burst)  | longest GC pause "
            f"{pauses.pause_max_s * 1e3:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=2000, help="enrolled users (= burst size)")
    ap.add_argument("--rate", type=float, default=400.0, help="probe Checks per second")
    ap.add_argument("--checks", type=int, default=2000, help="probe Checks")
    ap.add_argument("--learn-worker", choices=["on", "off", "both"], default="both")
    ap.add_argument("--gc-policy", choices=["on", "off", "both"], default="on",
                    help="bioshard serve's GC policy (on) or CPython's defaults (off)")
    args = ap.parse_args()
    workers = {"on": [True], "off": [False], "both": [False, True]}[args.learn_worker]
    policies = {"on": [True], "off": [False], "both": [False, True]}[args.gc_policy]
    for gcp in policies:
        for w in workers:
            print(run(args.users, args.rate, args.checks, w, gcp), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
