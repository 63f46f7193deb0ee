"""Feature extraction from raw behaviour events: the Python twin of the collector's.

``collector_js/src/extract.js`` computes the v1 features in the browser; this module
computes the same numbers from the same raw events (recorded as JSON lines) so that
replays, evaluations and tests can build telemetry windows without a browser.  The
two are kept in step line by line, and ``tests/test_extract_parity.py`` runs both on
the same streams.  The definitions are written down in ``docs/collector.md``.

Arithmetic is plain float64 in the same order as the JavaScript (no numpy, no
``sum()``, which may compensate), so results agree to the last bit except where
``atan2`` differs by an ulp between libms; rounding to the wire decimals absorbs that.

An event is a mapping with ``type`` (``keydown``, ``keyup``, ``mousemove``,
``mousedown``, ``mouseup``, ``wheel``, ``scroll``, ``touchstart``, ``touchmove``,
``touchend``), ``t`` (ms) and per-type fields (``x``, ``y``, ``dx``, ``dy``,
``button``, ``pressure``, ``w``, ``h``, ``id``, ``nt``, ``bs``, ``code``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypeGuard

from sidecar.features import MODALITIES

Event = Mapping[str, Any]
Features = dict[str, float]

DEFAULT_SID: Final = "AAAAAAAAAAAAAAAAAAAAAA"
"""Session id of replayed windows (22 base64url chars, i.e. 128 zero bits)."""

_MOD: Final[dict[str, str]] = {
    "keydown": "keys", "keyup": "keys",
    "mousemove": "mouse", "mousedown": "mouse", "mouseup": "mouse",
    "wheel": "scroll", "scroll": "scroll",
    "touchstart": "touch", "touchmove": "touch", "touchend": "touch",
}
_ORDER: Final = ("keys", "mouse", "scroll", "touch")

KEY_REPEAT_MS: Final = 2000.0
"""A second keydown of a key still held within this many ms is auto-repeat."""
KEY_GAP_MS: Final = 5000.0
"""Down→down gaps longer than this are not typing and count nowhere."""
KEY_PAUSE_MS: Final = 500.0
"""Typing bursts split at gaps above this; also the ``pause_ratio`` threshold."""
STROKE_GAP_MS: Final = 300.0
"""Mouse strokes split at pauses above this (and at every button press/release)."""
SCROLL_GAP_MS: Final = 300.0
"""Scroll bursts split at gaps above this."""
SWIPE_MIN_PX: Final = 10.0
"""A touch track whose path is shorter than this is a tap, not a swipe."""
Z_MAX: Final = 5.0
"""Robust z-score above which a per-event quantity is an outlier."""


def _num(v: object) -> TypeGuard[int | float]:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


def _opt(e: Event, k: str) -> bool:
    return k not in e or _num(e[k])


def _or(v: object, default: float) -> float:
    return float(v) if _num(v) else default


def _f(e: Event, k: str) -> float:
    return float(e[k])


def _hyp(dx: float, dy: float) -> float:
    return math.sqrt(dx * dx + dy * dy)


def valid(e: object) -> bool:
    """Whether an event is possible: known type, finite ``t >= 0``, fields finite and in range."""
    if not isinstance(e, Mapping):
        return False
    kind = e.get("type")
    m = _MOD.get(kind) if isinstance(kind, str) else None
    if m is None or not _num(e.get("t")) or e["t"] < 0:
        return False
    if m == "mouse":
        if e["type"] != "mousemove":
            return _opt(e, "x") and _opt(e, "y")
        return _num(e.get("x")) and _num(e.get("y"))
    if m == "scroll":
        return _opt(e, "dx") and _opt(e, "dy")
    if m == "touch":
        return (_num(e.get("x")) and _num(e.get("y")) and _opt(e, "pressure")
                and _opt(e, "w") and _opt(e, "h")
                and ("pressure" not in e or 0 <= e["pressure"] <= 1)
                and ("w" not in e or e["w"] >= 0) and ("h" not in e or e["h"] >= 0))
    return True


def clean_events(events: Iterable[object]) -> list[Event]:
    """Possible events, dropping any whose ``t`` goes back in time within its modality."""
    last: dict[str, float] = {}
    out: list[Event] = []
    for e in events:
        if not valid(e):
            continue
        assert isinstance(e, Mapping)
        m = _MOD[e["type"]]
        t = _f(e, "t")
        if m in last and t < last[m]:
            continue
        last[m] = t
        out.append(e)
    return out


def _sum(a: Sequence[float]) -> float:
    s = 0.0
    for v in a:
        s += v
    return s


def _mean(a: Sequence[float]) -> float:
    return _sum(a) / len(a)


def _std(a: Sequence[float]) -> float:
    m = _mean(a)
    s = 0.0
    for v in a:
        s += (v - m) * (v - m)
    return math.sqrt(s / len(a))


def _median(a: Sequence[float]) -> float:
    s = sorted(a)
    k = len(s) >> 1
    return s[k] if len(s) % 2 else (s[k - 1] + s[k]) / 2


def robust(a: list[float]) -> list[float]:
    """Drop values with robust z ``|x - median| / (1.4826 MAD)`` above 5.

    When the MAD is 0 the scale is ``1.253314 * mean |x - median|``; when that is 0
    too, or there are fewer than 3 values, nothing is dropped.
    """
    if len(a) < 3:
        return a
    med = _median(a)
    dev = [abs(v - med) for v in a]
    scale = 1.4826 * _median(dev)
    if scale == 0:
        scale = 1.253314 * _mean(dev)
    if scale == 0:
        return a
    return [v for v, d in zip(a, dev, strict=True) if d <= Z_MAX * scale]


def _keep(a: list[float], mod: str, name: str, no_outliers: bool = False) -> list[float]:
    """Values inside feature ``name``'s documented range (else impossible), then :func:`robust`."""
    spec = next(f for f in MODALITIES[mod].features if f.name == name)
    b = [v for v in a if spec.lo <= v <= spec.hi]
    return b if no_outliers else robust(b)


def _series(f: Features, prefix: str, a: Sequence[float]) -> None:
    if a:
        f[prefix + "_mean"] = _mean(a)
    if len(a) > 1:
        f[prefix + "_std"] = _std(a)


class _Down:
    __slots__ = ("b", "c", "t", "u")

    def __init__(self, t: float, c: str, b: bool) -> None:
        self.t, self.c, self.b = t, c, b
        self.u: float | None = None


def _keys(ev: list[Event]) -> tuple[int, Features]:
    downs: list[_Down] = []
    open_: list[_Down] = []
    holds: list[float] = []
    for e in ev:
        code = e["code"] if isinstance(e.get("code"), str) else ""
        t = _f(e, "t")
        if e["type"] == "keydown":
            i = next((j for j, r in enumerate(open_) if r.c == code), -1) if code else -1
            if i >= 0:
                if t - open_[i].t <= KEY_REPEAT_MS:
                    continue
                open_.pop(i)
            r = _Down(t, code, e.get("bs") is True)
            downs.append(r)
            open_.append(r)
        else:
            i = next((j for j, r in enumerate(open_) if r.c == code), -1)
            if i < 0:
                continue
            r = open_.pop(i)
            r.u = t
            holds.append(t - r.t)
    gaps: list[float] = []
    uds: list[float] = []
    pauses = keys_in = 0
    time_in = 0.0
    first = 0
    for i in range(1, len(downs) + 1):
        g = downs[i].t - downs[i - 1].t if i < len(downs) else math.inf
        if g > KEY_PAUSE_MS:
            d = downs[i - 1].t - downs[first].t
            if i - 1 > first and d > 0:
                keys_in += i - 1 - first
                time_in += d
            first = i
        if g > KEY_GAP_MS:
            continue
        gaps.append(g)
        if g > KEY_PAUSE_MS:
            pauses += 1
        up = downs[i - 1].u
        if up is not None:
            uds.append(downs[i].t - up)
    f: Features = {}
    _series(f, "hold", _keep(holds, "keys", "hold_mean"))
    _series(f, "dd", _keep(gaps, "keys", "dd_mean"))
    _series(f, "ud", _keep(uds, "keys", "ud_mean"))
    if time_in > 0:
        f["rate"] = (1000 * keys_in) / time_in
    if gaps:
        f["pause_ratio"] = pauses / len(gaps)
    if downs:
        f["backspace_ratio"] = sum(1 for r in downs if r.b) / len(downs)
    return len(downs), f


def _mouse(ev: list[Event]) -> tuple[int, Features]:
    strokes: list[list[Event]] = []
    hes: list[float] = []
    holds: list[float] = []
    down: dict[float, float] = {}
    cur: list[Event] | None = None
    last: Event | None = None
    for e in ev:
        t = _f(e, "t")
        if e["type"] == "mousemove":
            if cur is None or last is None or t - _f(last, "t") > STROKE_GAP_MS:
                cur = []
                strokes.append(cur)
            if not cur or t > _f(cur[-1], "t"):
                cur.append(e)
            last = e
            continue
        cur = None
        b = _or(e.get("button"), 0.0)
        if e["type"] == "mousedown":
            if last is not None:
                hes.append(t - _f(last, "t"))
            down[b] = t
        elif b in down:
            holds.append(t - down.pop(b))
    speeds: list[float] = []
    accels: list[float] = []
    straight: list[float] = []
    curv: list[float] = []
    for s in strokes:
        path = turn = 0.0
        turns = 0
        pv: float | None = None
        pdt = 0.0
        ph: float | None = None
        for i in range(1, len(s)):
            dx = _f(s[i], "x") - _f(s[i - 1], "x")
            dy = _f(s[i], "y") - _f(s[i - 1], "y")
            dt = _f(s[i], "t") - _f(s[i - 1], "t")
            d = _hyp(dx, dy)
            v = d / dt
            path += d
            speeds.append(v)
            if pv is not None:
                accels.append(abs(v - pv) / ((dt + pdt) / 2))
            pv, pdt = v, dt
            if d > 0:
                h = math.atan2(dy, dx)
                if ph is not None:
                    dh = h - ph
                    if dh > math.pi:
                        dh -= 2 * math.pi
                    elif dh < -math.pi:
                        dh += 2 * math.pi
                    turn += abs(dh)
                    turns += 1
                ph = h
        if len(s) > 2 and path > 0:
            c = _hyp(_f(s[-1], "x") - _f(s[0], "x"), _f(s[-1], "y") - _f(s[0], "y")) / path
            if math.isfinite(c):
                straight.append(c)
            if turns:
                curv.append(turn / path)
    f: Features = {}
    _series(f, "speed", _keep(speeds, "mouse", "speed_mean"))
    _series(f, "accel", _keep(accels, "mouse", "accel_mean"))
    if straight:
        f["straightness"] = _mean(straight)
    c_ = _keep(curv, "mouse", "curvature_mean")
    if c_:
        f["curvature_mean"] = _mean(c_)
    h_ = _keep(hes, "mouse", "hesitation_mean")
    if h_:
        f["hesitation_mean"] = _mean(h_)
    k_ = _keep(holds, "mouse", "click_hold_mean")
    if k_:
        f["click_hold_mean"] = _mean(k_)
    return len(ev), f


def _scroll_steps(ev: list[Event], kind: str) -> list[tuple[float, float, int]]:
    """``(t, |delta|, direction)`` of each ``kind`` event that moved 0 < |delta| <= 5000 px."""
    hi = next(f.hi for f in MODALITIES["scroll"].features if f.name == "delta_mean")
    out: list[tuple[float, float, int]] = []
    for e in ev:
        if e["type"] != kind:
            continue
        dx = _or(e.get("dx"), 0.0)
        dy = _or(e.get("dy"), 0.0)
        a = _hyp(dx, dy)
        if a <= 0 or a > hi:
            continue
        vertical = abs(dy) >= abs(dx)
        direction = (1 if vertical else 2) * (1 if (dy if vertical else dx) > 0 else -1)
        out.append((_f(e, "t"), a, direction))
    return out


def _scroll(ev: list[Event]) -> tuple[int, Features]:
    wheel = _scroll_steps(ev, "wheel")
    src = wheel if len(wheel) >= MODALITIES["scroll"].min_events else _scroll_steps(ev, "scroll")
    speeds: list[float] = []
    bursts: list[float] = []
    changes = 0
    for i, (t, a, direction) in enumerate(src):
        dt = t - src[i - 1][0] if i else math.inf
        if dt > SCROLL_GAP_MS:
            bursts.append(0.0)
        bursts[-1] += 1
        if 0 < dt <= SCROLL_GAP_MS:
            speeds.append(a / dt)
        if i and direction != src[i - 1][2]:
            changes += 1
    f: Features = {}
    _series(f, "speed", _keep(speeds, "scroll", "speed_mean"))
    d = _keep([a for _, a, _ in src], "scroll", "delta_mean")
    if d:
        f["delta_mean"] = _mean(d)
    if bursts:
        f["burst_len_mean"] = _mean(bursts)
    if len(src) > 1:
        f["dir_change_ratio"] = changes / (len(src) - 1)
    return len(src), f


def _touch(ev: list[Event]) -> tuple[int, Features]:
    tracks: dict[float, list[Event]] = {}
    speeds: list[float] = []
    durs: list[float] = []
    straight: list[float] = []
    pres: list[float] = []
    contact: list[float] = []
    starts = multi = 0
    for e in ev:
        if e["type"] != "touchend":
            if _num(e.get("pressure")) and e["pressure"] > 0:
                pres.append(_f(e, "pressure"))
            if _num(e.get("w")) and _num(e.get("h")) and e["w"] > 0 and e["h"] > 0:
                contact.append(_f(e, "w") * _f(e, "h"))
        tid = _or(e.get("id"), 0.0)
        if e["type"] == "touchstart":
            starts += 1
            if _or(e.get("nt"), 1.0) >= 2:
                multi += 1
            tracks[tid] = [e]
            continue
        tr = tracks.get(tid)
        if tr is None:
            continue
        tr.append(e)
        if e["type"] != "touchend":
            continue
        del tracks[tid]
        path = 0.0
        for i in range(1, len(tr)):
            path += _hyp(_f(tr[i], "x") - _f(tr[i - 1], "x"), _f(tr[i], "y") - _f(tr[i - 1], "y"))
        dur = _f(e, "t") - _f(tr[0], "t")
        if path < SWIPE_MIN_PX or dur <= 0:
            continue
        speeds.append(path / dur)
        durs.append(dur)
        c = _hyp(_f(e, "x") - _f(tr[0], "x"), _f(e, "y") - _f(tr[0], "y")) / path
        if math.isfinite(c):
            straight.append(c)
    f: Features = {}
    _series(f, "swipe_speed", _keep(speeds, "touch", "swipe_speed_mean"))
    d = _keep(durs, "touch", "swipe_duration_mean")
    if d:
        f["swipe_duration_mean"] = _mean(d)
    if straight:
        f["swipe_straightness"] = _mean(straight)
    _series(f, "pressure", _keep(pres, "touch", "pressure_mean", no_outliers=True))
    c_ = _keep(contact, "touch", "contact_mean")
    if c_:
        f["contact_mean"] = _mean(c_)
    if starts:
        f["multi_touch_ratio"] = multi / starts
    return len(ev), f


_EXTRACT: Final[dict[str, Callable[[list[Event]], tuple[int, Features]]]] = {
    "keys": _keys, "mouse": _mouse, "scroll": _scroll, "touch": _touch,
}


def round_to(v: float, d: int) -> float:
    """Round half away from zero to ``d`` decimals (bit-identical to the collector's)."""
    p = 10.0**d
    r = math.floor(abs(v) * p + 0.5) / p
    return -r if v < 0 and r else r


def extract_window(events: Iterable[object]) -> dict[str, dict[str, Any]]:
    """Raw events of one window → the ``m`` part of a v1 document.

    Returns ``{"keys": {"n": 58, "f": {"hold_mean": 96.2, ...}}, ...}`` with only the
    modalities that have ``n > 0``; each feature is clipped to its documented range
    and rounded to its decimals, and one that cannot be computed is absent.
    """
    ev = clean_events(events)
    by: dict[str, list[Event]] = {name: [] for name in _ORDER}
    for e in ev:
        by[_MOD[e["type"]]].append(e)
    m: dict[str, dict[str, Any]] = {}
    for name in _ORDER:
        n, raw = _EXTRACT[name](by[name])
        if not n:
            continue
        f: Features = {}
        for spec in MODALITIES[name].features:
            v = raw.get(spec.name)
            if v is not None and math.isfinite(v):
                f[spec.name] = round_to(min(max(v, spec.lo), spec.hi), spec.decimals) + 0.0
        m[name] = {"n": n, "f": f}
    return m


def device_of(events: Iterable[object]) -> str:
    """``"touch"`` when a window holds more touch than mouse events, else ``"desktop"``."""
    t = 0
    for e in clean_events(events):
        m = _MOD[e["type"]]
        t += 1 if m == "touch" else -1 if m == "mouse" else 0
    return "touch" if t > 0 else "desktop"


def windows_from_events(events: Iterable[object], window_ms: int, *,
                        sid: str = DEFAULT_SID) -> list[dict[str, Any]]:
    """Tumbling windows ``[k*W, (k+1)*W)`` over a recorded stream → v1 documents.

    Each document is ``{"sid", "seq", "ts", "dev", "m"}`` with ``seq`` counting from 1
    and ``ts`` the window's end; windows whose ``m`` is empty are skipped.
    """
    if window_ms <= 0:
        raise ValueError("window_ms must be positive")
    buckets: dict[int, list[Event]] = {}
    for e in clean_events(events):
        buckets.setdefault(math.floor(_f(e, "t") / window_ms), []).append(e)
    docs: list[dict[str, Any]] = []
    for k in sorted(buckets):
        ev = buckets[k]
        m = extract_window(ev)
        if not m:
            continue
        docs.append({"sid": sid, "seq": len(docs) + 1, "ts": (k + 1) * window_ms,
                     "dev": device_of(ev), "m": m})
    return docs


def read_events_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Events from a JSON-lines file (blank lines skipped; a non-object line is an error)."""
    events: list[dict[str, Any]] = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"line {lineno}: not JSON") from exc
            if not isinstance(e, dict):
                raise ValueError(f"line {lineno}: not a JSON object")
            events.append(e)
    return events
