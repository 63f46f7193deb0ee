"""The garbage-collector policy: no automatic full collection, pauses measured, restored."""

from __future__ import annotations

import gc
import time

from sidecar.gc_policy import NEVER, GcPolicy


def test_young_collections_only_and_pauses_measured() -> None:
    before = gc.get_threshold()
    policy = GcPolicy()
    policy.start()
    try:
        assert gc.get_threshold()[:2] == before[:2]
        assert gc.get_threshold()[2] == NEVER
        assert gc.get_freeze_count() > 0  # what start-up built is never scanned again
        cycles = []
        for _ in range(5000):  # short-lived cycles are still collected young
            a: list[object] = []
            a.append(a)
            cycles.append(len(a))
        gc.collect(0)
        assert policy.pauses.collections[0] >= 1
        assert policy.pauses.collections[2] == 0
        assert 0.0 <= policy.pauses.pause_max_s < 1.0
    finally:
        policy.stop()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_timed_full_collection() -> None:
    policy = GcPolicy(full_interval_s=0.05)
    policy.start()
    try:
        deadline = time.monotonic() + 5
        while policy.pauses.collections[2] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert policy.pauses.collections[2] >= 1
        assert policy.pauses.pause_total_s[2] > 0
    finally:
        policy.stop()
