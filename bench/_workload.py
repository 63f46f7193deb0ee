"""The benchmark's users: enrolled profiles in the store, and their requests' telemetry.

Users ``bench-user-00000`` … behave as synthetic personas (:mod:`sidecar.scoring.synthetic`):
mostly desktop humans, some on touch devices, some alternating mouse and touchpad;
user ``u`` is persona ``u % P``.  :func:`build_profiles` enrols each persona the way
the sidecar would (score a genuine window, learn it if learnable), past enrolment and
with a score history; :func:`seed_store` writes every user's profile through the store
API under the sidecar's pseudonyms and keys.  :func:`window_bank` draws fresh genuine
windows per persona and :func:`telemetry_pool` turns them into request values, so the
sidecar scores real windows against real profiles and most decisions are ``ok``.
Every value has its own ``(sid, seq)``: one session per user and pool, ``seq``
counting up, users in a new random order on each pass.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

import numpy as np

from sidecar.crypto import Pseudonymizer
from sidecar.scoring import (
    Persona,
    PopulationModel,
    Profile,
    ScoringParams,
    learn_window,
    score_window,
    synthetic_sid,
    synthetic_window,
)
from sidecar.store import ProfileStore
from sidecar.telemetry import decode, encode_deflate, encode_json

USER_PREFIX: Final = "bench-user-"
ENROL_WINDOWS: Final = 30
"""Windows each profile learns from: past enrolment (5 per modality) and past the 20
genuine scores the per-user dynamic threshold needs."""
BANK_WINDOWS: Final = 16
"""Distinct feature windows drawn per persona for the requests."""
_DAY_MS: Final = 86_400_000


def user_id(index: int) -> str:
    """The benchmark's id of user ``index`` (what the request's ``x-user-id`` carries)."""
    return f"{USER_PREFIX}{index:05d}"


def persona(index: int) -> Persona:
    """Persona ``index``: 80 % desktop humans, 10 % touch, 10 % mouse + touchpad."""
    seed = 10_000 + index
    if index % 10 == 7:
        return Persona.touch_user(seed)
    if index % 10 == 9:
        return Persona.two_mode(seed)
    return Persona.human(seed)


@dataclass(frozen=True, slots=True)
class EnrolledPersonas:
    """``profiles[p]`` is the serialised :class:`Profile` enrolled on persona ``p``.

    User ``u`` behaves as persona ``u % len(profiles)`` and starts from its profile:
    enrolling is the slow part of the set-up (a few ms per profile), and what a Check
    costs does not depend on whether two users' numbers happen to coincide (each user
    still has a record of its own, under its own pseudonym and encryption).
    """

    profiles: tuple[bytes, ...]
    build_s: float

    def __len__(self) -> int:
        return len(self.profiles)

    def profile_of(self, user: int) -> bytes:
        """The stored profile of user ``user``."""
        return self.profiles[user % len(self.profiles)]


def build_profiles(n_personas: int, *, windows: int = ENROL_WINDOWS, seed: int = 0,
                   params: ScoringParams | None = None) -> EnrolledPersonas:
    """Enrol ``n_personas`` personas on ``windows`` genuine windows each, as the sidecar
    would (score the window, learn it when learnable)."""
    params = params or ScoringParams()
    population = PopulationModel.default()
    rng = np.random.default_rng(seed)
    start_ms = int(time.time() * 1000) - 7 * _DAY_MS
    t0 = time.perf_counter()
    out: list[bytes] = []
    for p in range(n_personas):
        who = persona(p)
        profile = Profile(created_ms=start_ms)
        sid = synthetic_sid(rng)
        for k in range(windows):
            doc = synthetic_window(who, rng, sid=sid, seq=k + 1, ts_ms=start_ms + k * 60_000)
            window = decode(encode_json(doc))
            result = score_window(profile, window, population, params)
            if result.learnable:
                learn_window(profile, window, result.score, params, population=population)
        out.append(profile.to_bytes())
    return EnrolledPersonas(tuple(out), time.perf_counter() - t0)


def seed_store(store: ProfileStore, pseudonymizer: Pseudonymizer, n_users: int,
               enrolled: EnrolledPersonas) -> float:
    """Write user ``0 … n_users-1``'s profile under its pseudonym; returns the seconds."""
    t0 = time.perf_counter()
    for u in range(n_users):
        store.put(pseudonymizer.pseudonym(user_id(u)), enrolled.profile_of(u))
    return time.perf_counter() - t0


@dataclass(frozen=True, slots=True)
class PersonaWindows:
    """Genuine windows of one persona: its device and the ``"m"`` parts of wire documents."""

    device: str
    windows: tuple[Mapping[str, object], ...]


WindowBank = tuple[PersonaWindows, ...]
"""``bank[p]``: persona ``p``'s windows for the requests."""


def window_bank(n_personas: int, *, per_persona: int = BANK_WINDOWS, seed: int = 1
                ) -> WindowBank:
    """Fresh genuine feature windows per persona (not the ones its profile learned)."""
    rng = np.random.default_rng(seed)
    bank = []
    for p in range(n_personas):
        who = persona(p)
        docs = [synthetic_window(who, rng, sid="-", seq=1, ts_ms=0) for _ in range(per_persona)]
        bank.append(PersonaWindows(who.device, tuple(_modalities(d) for d in docs)))
    return tuple(bank)


def _modalities(doc: Mapping[str, object]) -> Mapping[str, object]:
    m = doc["m"]
    assert isinstance(m, Mapping)
    return m


def telemetry_pool(n_users: int, count: int, bank: WindowBank, *, seed: int,
                   ts_ms: int | None = None) -> Iterator[tuple[str, str]]:
    """``count`` ``(user id, telemetry value)`` pairs, deflate-encoded v1 documents.

    Users come in a new random order on every pass; each user gets one new session
    (``sid``) per pool with ``seq`` 1, 2, …, so every value is fresh to the sidecar.
    Features are drawn from the user's persona's windows in ``bank``.
    """
    rng = np.random.default_rng(seed)
    ts = int(time.time() * 1000) if ts_ms is None else ts_ms
    sessions: dict[int, tuple[str, int]] = {}
    order = np.arange(n_users)
    for j in range(count):
        pos = j % n_users
        if pos == 0:
            rng.shuffle(order)
        u = int(order[pos])
        sid, seq = sessions.get(u) or (synthetic_sid(rng), 0)
        sessions[u] = (sid, seq + 1)
        own = bank[u % len(bank)]
        doc = {"sid": sid, "seq": seq + 1, "ts": ts, "dev": own.device,
               "m": own.windows[int(rng.integers(len(own.windows)))]}
        yield user_id(u), encode_deflate(doc)


@dataclass(frozen=True, slots=True)
class ScoringCost:
    """In-process CPU µs per ``score_window`` call (this thread's CPU time, medians)."""

    cached_plan_us: float
    """The user's scoring plan is cached (the same model scored before)."""
    after_learn_us: float
    """The model learned a window since the last score, so the plan is rebuilt first."""


def scoring_cost(enrolled: EnrolledPersonas, bank: WindowBank, *, users: int = 20,
                 rounds: int = 15) -> ScoringCost:
    """Time ``score_window`` on enrolled profiles and their personas' own windows."""
    params, population = ScoringParams(), PopulationModel.default()
    n = min(users, len(enrolled), len(bank))
    cached: list[float] = []
    learned: list[float] = []
    for p in range(n):
        profile = Profile.from_bytes(enrolled.profiles[p])
        windows = [decode(encode_json({"sid": "AAAAAAAAAAAAAAAAAAAAAA", "seq": 1, "ts": 0,
                                       "dev": bank[p].device, "m": m}))
                   for m in bank[p].windows]
        for w in windows:
            score_window(profile, w, population, params)  # build the plans
        for _ in range(rounds):
            for w in windows:
                t0 = time.thread_time_ns()
                score_window(profile, w, population, params)
                cached.append((time.thread_time_ns() - t0) / 1e3)
        for w in windows:
            result = score_window(profile, w, population, params)
            learn_window(profile, w, result.score, params, population=population)
            t0 = time.thread_time_ns()
            score_window(profile, w, population, params)
            learned.append((time.thread_time_ns() - t0) / 1e3)
    return ScoringCost(float(np.median(cached)) if cached else float("nan"),
                       float(np.median(learned)) if learned else float("nan"))

