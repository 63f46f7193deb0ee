"""The decision pipeline: identify → pseudonymise → decode → replay check → load
profile → score → tier.  It reads top to bottom; each phase is one method.

Pure of the wire: it takes an :class:`AuthInput` (built from the CheckRequest in
``envoy_io``) and returns a :class:`Decision` (turned into a CheckResponse there).
Every path ends in an explicit decision with a stable reason code; nothing raises
out of :meth:`Pipeline.check`.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from sidecar.config import Settings
from sidecar.crypto import DecryptError, Pseudonymizer
from sidecar.learner import Learner
from sidecar.metrics import Metrics
from sidecar.profile_cache import ProfileCache, digest
from sidecar.reasons import Reason
from sidecar.replay_guard import ANONYMOUS, ReplayGuard, ReplayKind
from sidecar.scoring import (
    PopulationModel,
    Profile,
    ProfileFormatError,
    ScoreResult,
    score_window,
)
from sidecar.store.base import ProfileStore, StoreUnavailable
from sidecar.telemetry import Telemetry, TelemetryError, decode
from sidecar.tiers import DEFAULT_TIERS, TierSpec

log = logging.getLogger(__name__)

@dataclass(frozen=True, slots=True)
class AuthInput:
    """What the pipeline needs from one request, already off the wire."""

    user_id: str | None
    telemetry: str | None
    telemetry_source: str | None  # "header" | "cookie" | None
    request_id: str | None = None
    method: str = ""
    path: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    decision_id: str
    tier: int
    cluster: str
    reason: Reason
    score: float | None
    deny_status: int | None = None  # set when Envoy must answer instead of routing
    detail: str = ""                # machine-readable sub-reason (never user data)
    remove_telemetry_header: bool = False


def apply_policy(settings: Settings, reason: Reason, scored_tier: int | None
                 ) -> tuple[int, int | None]:
    """``(tier, deny_status)`` for a reason under the settings' policy.

    ``"score"`` takes the scored tier (2 when there is none); ``"deny"`` answers 400 for
    bad telemetry and 403 otherwise; ``tier3_action = "deny"`` turns any tier 3 into 403.
    """
    action = settings.action(reason)
    deny_status: int | None = None
    if action == "score":
        tier = scored_tier if scored_tier is not None else 2
    elif action == "deny":
        tier = 3
        deny_status = 400 if reason is Reason.BAD_TELEMETRY else 403
    else:
        tier = int(action)
    if tier == 3 and deny_status is None and settings.tier3_action == "deny":
        deny_status = 403
    return tier, deny_status


def reason_for(result: ScoreResult, *, identified: bool) -> Reason:
    """The reason code of a scored window."""
    if result.scripted:
        return Reason.SCRIPTED_INPUT
    if not identified:
        return Reason.NO_IDENTITY
    return Reason.ENROLLING if result.enrolling else Reason.OK


class _Deadline(Exception):
    pass


class Pipeline:
    def __init__(self, settings: Settings, *, pseudonymizer: Pseudonymizer, store: ProfileStore,
                 population: PopulationModel | None = None, metrics: Metrics | None = None,
                 tiers: dict[int, TierSpec] | None = None) -> None:
        self.settings = settings
        self._pseudo = pseudonymizer
        self.store = store
        self.population = population or PopulationModel.default()
        self.metrics = metrics or Metrics()
        self.tiers = tiers or dict(DEFAULT_TIERS)
        self.cache = ProfileCache(max_entries=settings.cache_size, ttl_s=settings.cache_ttl_s)
        self.replay = ReplayGuard(max_sessions=settings.replay_sessions,
                                  max_age_s=settings.max_telemetry_age_s,
                                  max_skew_s=settings.max_clock_skew_s)
        self.learner = Learner(store, self.cache, settings.scoring, delay_s=settings.learn_delay_s,
                               interval_s=settings.learn_interval_s, population=self.population,
                               worker=settings.learn_worker)
        self._io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bioshard-store")
        learner = self.learner
        for name, fn in (("bioshard_learner_applied", lambda: learner.applied),
                         ("bioshard_learner_failures", lambda: learner.failures),
                         ("bioshard_learner_worker_restarts", lambda: learner.worker_restarts),
                         ("bioshard_profiles_cached", lambda: len(self.cache))):
            self.metrics.gauge(name, fn)

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> None:
        self.learner.start()

    def close(self) -> None:
        self.learner.stop(flush=True)
        self._io.shutdown(wait=True)
        self.store.close()

    def reconfigure(self, settings: Settings) -> None:
        """Swap in new (validated) settings: thresholds and policies apply to the next request."""
        self.settings = settings
        self.learner.params = settings.scoring

    def pseudonym(self, user_id: str) -> str:
        return self._pseudo.pseudonym(user_id)

    # -- the pipeline ---------------------------------------------------------------
    def check(self, inp: AuthInput) -> Decision:
        t0 = time.perf_counter()
        settings = self.settings
        decision_id = inp.request_id or os.urandom(12).hex()
        try:
            decision = self._check(inp, settings, decision_id, t0)
        except Exception:  # a bug must still produce an explicit answer (fail closed-ish)
            log.exception("internal error in Check (decision %s)", decision_id)
            decision = self._decide(settings, decision_id, Reason.INTERNAL_ERROR, None,
                                    inp.telemetry is not None)
        self.metrics.observe(decision.reason, decision.tier, time.perf_counter() - t0)
        return decision

    def _check(self, inp: AuthInput, s: Settings, decision_id: str, t0: float) -> Decision:
        has_tel = inp.telemetry is not None
        # 1. identify + pseudonymise (the raw id goes no further than this line)
        pseudonym = self._pseudo.pseudonym(inp.user_id) if inp.user_id else None
        # 2. decode telemetry
        if inp.telemetry is None:
            return self._decide(s, decision_id, Reason.NO_TELEMETRY, None, has_tel)
        try:
            window = decode(inp.telemetry)
        except TelemetryError as exc:
            return self._decide(s, decision_id, Reason.BAD_TELEMETRY, None, has_tel,
                                detail=exc.detail)
        # 3. replay check
        kind = self.replay.check(sid=window.sid, seq=window.seq, ts_ms=window.ts_ms,
                                 owner=pseudonym or ANONYMOUS, now_ms=int(time.time() * 1000))
        if kind is ReplayKind.SEEN and inp.telemetry_source == "cookie":
            # Browsers resend the cookie on every request until the collector rewrites
            # it: a repeat is "nothing new", not an attack (and earns no fresh score).
            return self._decide(s, decision_id, Reason.NO_TELEMETRY, None, has_tel,
                                detail="cookie_repeated")
        if kind is not ReplayKind.FRESH:
            return self._decide(s, decision_id, Reason.REPLAYED_TELEMETRY, None, has_tel,
                                detail=kind.value)
        if not window.modalities:
            return self._decide(s, decision_id, Reason.INSUFFICIENT_TELEMETRY, None,
                                has_tel)
        # 4. load profile (cache, then store within the deadline)
        profile: Profile | None = None
        if pseudonym is not None:
            try:
                profile = self._load(pseudonym, t0 + s.deadline_ms / 1000.0)
            except _Deadline:
                return self._decide(s, decision_id, Reason.DEADLINE, None, has_tel)
            except StoreUnavailable:
                return self._decide(s, decision_id, Reason.STORE_UNAVAILABLE, None,
                                    has_tel)
        # 5. score
        result = score_window(profile, window, self.population, s.scoring)
        # 6. reason + tier
        reason = reason_for(result, identified=pseudonym is not None)
        decision = self._decide(s, decision_id, reason, result, has_tel,
                                detail=result.scripted or "")
        # 7. learning, off the hot path (queued; applied later by the learner thread)
        if pseudonym is not None:
            self.learner.remember(decision_id, pseudonym, inp.telemetry, result.score,
                                  self._learnable(reason, result, profile, window, s))
        return decision

    @staticmethod
    def _learnable(reason: Reason, result: ScoreResult, profile: Profile | None,
                   window: Telemetry, s: Settings) -> bool:
        """May this window be learned (after the delay)?

        The scorer's gate (score below ``learn_max_score``) while the user is enrolling or
        the profile is young, so that enrolment and the first weeks do not starve; once
        every modality of the window has ``learn_strict_after`` learned windows, only
        tier-1 windows: a tier-2 window from an impostor on a stolen session must not
        pull a mature profile toward them.
        """
        if not result.learnable or reason not in (Reason.OK, Reason.ENROLLING):
            return False
        if reason is Reason.ENROLLING or profile is None:
            return True
        mature = all(profile.windows_learned(m) >= s.learn_strict_after
                     for m in window.modalities)
        return result.tier == 1 or not mature

    def _load(self, pseudonym: str, deadline: float) -> Profile | None:
        hit, profile = self.cache.get(pseudonym)
        if hit:
            return profile
        if self.store.local_reads:
            return self._read_profile(pseudonym)
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise _Deadline
        fut = self._io.submit(self._read_profile, pseudonym)
        try:
            return fut.result(timeout=remaining)
        except FutureTimeout:
            fut.cancel()
            raise _Deadline from None

    def _read_profile(self, pseudonym: str) -> Profile | None:
        """Store read; decodes only when the bytes changed since the cached entry."""
        try:
            raw = self.store.get(pseudonym)
        except DecryptError:
            # Wrong key ring or a tampered blob: never score against it, never overwrite it.
            log.error("profile could not be decrypted (check the key ring)")
            raise StoreUnavailable("decrypt") from None
        d = digest(raw)
        same, cached = self.cache.revalidate(pseudonym, d)
        if same:
            return cached
        profile: Profile | None = None
        if raw is not None:
            try:
                profile = Profile.from_bytes(raw, self.settings.scoring)
            except ProfileFormatError:
                log.error("stored profile is corrupt or of an unknown format")
                raise StoreUnavailable("format") from None
        self.cache.put(pseudonym, profile, d)
        return profile

    def _decide(self, s: Settings, decision_id: str, reason: Reason,
                result: ScoreResult | None, has_tel: bool,
                *, detail: str = "") -> Decision:
        score = result.score if result is not None else None
        tier, deny_status = apply_policy(s, reason, result.tier if result is not None else None)
        return Decision(decision_id=decision_id, tier=tier, cluster=self.tiers[tier].cluster,
                        reason=reason, score=score, deny_status=deny_status, detail=detail,
                        remove_telemetry_header=has_tel)
