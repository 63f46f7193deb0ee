"""A minimal progress bar on stderr (no dependency, safe when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """``[#####.....]  12/54  label  8s`` redrawn in place at most every ``interval`` s.

    When the stream is not a terminal the bar is drawn only at 0 % and 100 %, so that
    logs stay readable.  ``enabled=False`` makes every call a no-op.
    """

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None,
                 enabled: bool = True, width: int = 30, interval: float = 0.2) -> None:
        self.total = max(total, 0)
        self.label = label
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._width = width
        self._interval = interval
        self._t0 = time.monotonic()
        self._last = -1.0
        self._draw(force=True)

    def __call__(self, n: int = 1) -> None:
        """Advance by ``n`` units."""
        self.done = min(self.done + n, self.total) if self.total else self.done + n
        self._draw(force=self.done >= self.total)

    def set_label(self, label: str) -> None:
        """Change the text after the counter (e.g. the current password)."""
        self.label = label

    def close(self) -> None:
        """Finish the line."""
        if not self._enabled:
            return
        if self._tty:
            self._draw(force=True)
            self._stream.write("\n")
            self._stream.flush()
        elif self.done < self.total:
            self._draw(force=True)
        self._enabled = False

    def _draw(self, *, force: bool) -> None:
        if not self._enabled:
            return
        now = time.monotonic()
        if not force and (not self._tty or now - self._last < self._interval):
            return
        self._last = now
        frac = self.done / self.total if self.total else 1.0
        filled = round(frac * self._width)
        bar = "#" * filled + "." * (self._width - filled)
        line = (f"[{bar}] {self.done:>{len(str(self.total))}}/{self.total}  "
                f"{self.label}  {now - self._t0:.0f}s")
        self._stream.write(("\r" if self._tty else "") + line + ("" if self._tty else "\n"))
        self._stream.flush()
