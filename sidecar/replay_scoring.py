"""Score recorded windows offline for ``bioshard replay`` with the sidecar's own code.

The windows go through the same decoder (encoded, then decoded: the same validation
and clipping), the same profile store and keys (``BIOSHARD_*``), the same scorer and
the same reason and tier policy as ``Check``.  What it skips is the replay guard: a
recording's timestamps are old by nature.  With ``--learn`` the windows that scored
as normal are learned into the profile (enrolling a user from recordings).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from sidecar.config import load_settings
from sidecar.crypto import Pseudonymizer, load_keys
from sidecar.pipeline import apply_policy, reason_for
from sidecar.scoring import PopulationModel, Profile, learn_window, score_window
from sidecar.store import open_store
from sidecar.telemetry import TelemetryError, decode, encode_json


def score_windows(user: str, docs: list[dict[str, Any]],
                  args: argparse.Namespace) -> list[dict[str, Any]]:
    """One result per window: ``tier``, ``score``, ``reason`` and per-modality scores."""
    overrides: dict[str, object] = {"store": getattr(args, "store", None)}
    settings = load_settings(env=os.environ, config_file=getattr(args, "config", None),
                             overrides=overrides)
    keys = load_keys(os.environ)
    store = open_store(settings.store, keys.keyring)
    params = settings.scoring
    population = PopulationModel.default()
    learn = bool(getattr(args, "learn", False))
    try:
        pseudonym = Pseudonymizer(keys.pseudonym_key).pseudonym(user)
        raw = store.get(pseudonym)
        profile = Profile.from_bytes(raw, params) if raw is not None else None
        results: list[dict[str, Any]] = []
        for doc in docs:
            try:
                window = decode(encode_json(doc))
            except TelemetryError as exc:
                results.append({"tier": None, "score": None, "reason": "bad_telemetry",
                                "detail": exc.detail})
                continue
            if not window.modalities:
                results.append({"tier": None, "score": None,
                                "reason": "insufficient_telemetry"})
                continue
            result = score_window(profile, window, population, params)
            reason = reason_for(result, identified=True)
            tier, _ = apply_policy(settings, reason, result.tier)
            results.append({"tier": tier, "score": round(result.score, 4), "reason": reason.value,
                            "modalities": {k: round(v, 4)
                                           for k, v in result.modality_scores.items()}})
            if learn and result.learnable:
                if profile is None:
                    profile = Profile(params=params, created_ms=window.ts_ms)
                learn_window(profile, window, result.score, params, population=population)
        if learn and profile is not None:
            store.put(pseudonym, profile.to_bytes())
        return results
    finally:
        store.close()
