"""Who the simulated traffic comes from, and what each one sends (pure, seeded).

An :class:`Actor` turns its persona into :class:`PlannedRequest` values — path, headers,
and a label saying what the request tries — without any I/O; the simulator sends them
through Envoy.  Kinds:

* ``genuine`` — an enrolled user with their own behaviour; a new browser session (fresh
  ``sid``, ``seq`` from 1) every 5–15 windows; one request in five is a page navigation
  that carries the telemetry as the ``__bsh`` cookie instead of the header;
* ``impostor`` — someone who stole a genuine user's session: the victim's user id with
  the impostor's own behaviour.  Every other impostor is a *replayer* who also resends,
  verbatim, windows captured from the victim;
* ``bot`` — a script (constant key timings, or straight constant-speed mouse moves),
  either on a new account with no profile or on a stolen genuine account;
* ``anonymous`` — a human visitor with no user id; some navigations carry no telemetry.

Nothing here decides a tier: the labels only describe the attempt.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from sidecar.scoring import Persona, synthetic_sid, synthetic_window
from sidecar.telemetry import encode_deflate
from sidecar.tiers import COOKIE_TELEMETRY, HDR_TELEMETRY

Kind = Literal["genuine", "impostor", "bot", "anonymous"]
KINDS: Final[tuple[Kind, ...]] = ("genuine", "impostor", "bot", "anonymous")

IDENTITY_HEADER: Final = "x-user-id"
API_PATH: Final = "/api/ping"
PAGE_PATH: Final = "/"

_SESSION_WINDOWS: Final = (5, 15)     # windows per genuine browser session (inclusive)
_NAVIGATION_P: Final = 0.2            # share of genuine requests that are page navigations
_REPLAY_P: Final = 0.35               # share of a replayer's requests that resend a capture
_NO_TELEMETRY_P: Final = 0.3          # share of anonymous navigations without telemetry
_CAPTURED: Final = 32                 # windows an attacker may have captured per victim


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One GET to send through Envoy.  ``action`` labels the attempt (never a tier)."""

    path: str
    headers: dict[str, str]
    action: str


@dataclass
class Actor:
    """One simulated visitor; :meth:`next_request` is not thread-safe (hold :attr:`lock`)."""

    kind: Kind
    name: str
    persona: Persona
    rng: np.random.Generator
    user_id: str | None
    tls: bool = False
    victim: Actor | None = None
    replayer: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    sid: str = ""
    seq: int = 0
    session_left: int = 0
    captured: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_CAPTURED), repr=False)

    # -- windows ----------------------------------------------------------------------
    def _new_session(self) -> None:
        lo, hi = _SESSION_WINDOWS
        self.sid = synthetic_sid(self.rng)
        self.seq = 0
        self.session_left = int(self.rng.integers(lo, hi + 1))

    def next_window(self, now_ms: int | None = None) -> str:
        """The next telemetry value of this actor's own behaviour (new session when due)."""
        if self.session_left <= 0 or not self.sid:
            self._new_session()
        self.session_left -= 1
        self.seq += 1
        doc = synthetic_window(self.persona, self.rng, sid=self.sid, seq=self.seq,
                               ts_ms=int(time.time() * 1000) if now_ms is None else now_ms)
        value = encode_deflate(doc)
        if self.kind == "genuine":
            self.captured.append(value)  # what an attacker on the victim's wire could copy
        return value

    def _headers(self, value: str | None, *, cookie: bool = False) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.user_id is not None:
            headers[IDENTITY_HEADER] = self.user_id
        if value is not None:
            if cookie:
                headers["cookie"] = f"{COOKIE_TELEMETRY}={value}"
            else:
                headers[HDR_TELEMETRY] = value
        return headers

    # -- requests ---------------------------------------------------------------------
    def enrolment_request(self) -> PlannedRequest:
        """An API call carrying one window of the actor's own behaviour."""
        return PlannedRequest(API_PATH, self._headers(self.next_window()), "enrol")

    def next_request(self) -> PlannedRequest:
        """The next request of the mixed phase (see the module docstring)."""
        if self.kind == "genuine":
            if self.rng.random() < _NAVIGATION_P:
                return PlannedRequest(PAGE_PATH, self._headers(self.next_window(), cookie=True),
                                      "navigate")
            return PlannedRequest(API_PATH, self._headers(self.next_window()), "own")
        if self.kind == "impostor":
            victim = self.victim
            if (self.replayer and victim is not None and victim.captured
                    and self.rng.random() < _REPLAY_P):
                captured = list(victim.captured)
                value = captured[int(self.rng.integers(len(captured)))]
                return PlannedRequest(API_PATH, self._headers(value), "replay")
            return PlannedRequest(API_PATH, self._headers(self.next_window()), "own")
        if self.kind == "bot":
            action = "stolen_account" if self.victim is not None else "no_profile"
            return PlannedRequest(API_PATH, self._headers(self.next_window()), action)
        if self.rng.random() < _NO_TELEMETRY_P:
            return PlannedRequest(PAGE_PATH, self._headers(None), "no_telemetry")
        return PlannedRequest(API_PATH, self._headers(self.next_window()), "own")


@dataclass(frozen=True, slots=True)
class Cast:
    """Everybody in the demo, by kind."""

    genuine: tuple[Actor, ...]
    impostor: tuple[Actor, ...]
    bot: tuple[Actor, ...]
    anonymous: tuple[Actor, ...]

    def of(self, kind: Kind) -> tuple[Actor, ...]:
        """The actors of ``kind``."""
        actors: tuple[Actor, ...] = getattr(self, kind)
        return actors

    def all(self) -> tuple[Actor, ...]:
        """Every actor, genuine users first."""
        return self.genuine + self.impostor + self.bot + self.anonymous


def user_id(i: int) -> str:
    """The demo's id of genuine user ``i`` (a made-up address; never logged at INFO)."""
    return f"user{i:02d}@demo.invalid"


def build_cast(*, users: int, impostors: int, bots: int, anonymous: int, seed: int) -> Cast:
    """The demo's actors; the same arguments always give the same personas and rngs.

    Impostors and stolen-account bots pick their victims round-robin among the genuine
    users; with no genuine users every bot is a new account and there are no impostors.
    """
    def rng(kind: int, i: int) -> np.random.Generator:
        return np.random.default_rng([seed, kind, i])

    genuine = tuple(
        Actor("genuine", f"genuine-{i}", Persona.human(seed * 10_007 + i), rng(0, i),
              user_id(i), tls=i % 2 == 1)
        for i in range(users))
    impostor: list[Actor] = []
    if genuine:
        for i in range(impostors):
            victim = genuine[i % len(genuine)]
            impostor.append(Actor("impostor", f"impostor-{i}",
                                  Persona.impostor(seed * 10_007 + i), rng(1, i),
                                  victim.user_id, tls=i % 2 == 1, victim=victim,
                                  replayer=i % 2 == 1))
    bot: list[Actor] = []
    for i in range(bots):
        persona = (Persona.bot_constant_keys(i) if i % 2 == 0
                   else Persona.bot_straight_mouse(i))
        stolen = bool(genuine) and i % 4 in (1, 2)
        owner = genuine[(i // 2) % len(genuine)] if stolen else None
        uid = owner.user_id if owner is not None else f"bot{i:02d}@demo.invalid"
        bot.append(Actor("bot", f"bot-{i}", persona, rng(2, i), uid, victim=owner))
    anon = tuple(
        Actor("anonymous", f"anonymous-{i}", Persona.human(seed * 10_007 + 5_000 + i),
              rng(3, i), None, tls=i % 2 == 0)
        for i in range(anonymous))
    return Cast(genuine, tuple(impostor), tuple(bot), anon)


def kind_weights(cast: Cast, shares: Sequence[float] = (0.6, 0.2, 0.12, 0.08)
                 ) -> dict[Kind, float]:
    """Share of the mixed traffic per kind (kinds without actors get 0; sums to 1)."""
    raw = {k: (s if cast.of(k) else 0.0) for k, s in zip(KINDS, shares, strict=True)}
    total = sum(raw.values())
    return {k: (v / total if total else 0.0) for k, v in raw.items()}
