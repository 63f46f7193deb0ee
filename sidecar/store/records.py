"""The record-level half of the store contract, shared by every backend.

A backend implements three primitives on ``(pseudonym, name)`` records — ``_get``,
``_put``, ``_update`` — plus ``delete``/``count``/``ping``/``close``; this base turns
them into the public profile and auxiliary-record methods, validating names once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from sidecar.store.base import PROFILE, UpdateFn
from sidecar.store.codec import check_aux_name, check_pseudonym, check_ttl


class RecordStore(ABC):
    local_reads: bool = False  # see ProfileStore.local_reads

    @abstractmethod
    def _get(self, pseudonym: str, name: str) -> bytes | None: ...

    @abstractmethod
    def _put(self, pseudonym: str, name: str, data: bytes, ttl_s: float | None) -> None: ...

    @abstractmethod
    def _update(self, pseudonym: str, name: str, fn: UpdateFn,
                ttl_s: float | None) -> bytes | None: ...

    # -- the profile ------------------------------------------------------------------

    def get(self, pseudonym: str) -> bytes | None:
        return self._get(check_pseudonym(pseudonym), PROFILE)

    def put(self, pseudonym: str, data: bytes) -> None:
        self._put(check_pseudonym(pseudonym), PROFILE, data, None)

    def update(self, pseudonym: str, fn: UpdateFn) -> bytes | None:
        return self._update(check_pseudonym(pseudonym), PROFILE, fn, None)

    # -- auxiliary records ------------------------------------------------------------

    def get_aux(self, pseudonym: str, name: str) -> bytes | None:
        return self._get(check_pseudonym(pseudonym), check_aux_name(name))

    def put_aux(self, pseudonym: str, name: str, data: bytes, *,
                ttl_s: float | None = None) -> None:
        self._put(check_pseudonym(pseudonym), check_aux_name(name), data, check_ttl(ttl_s))

    def update_aux(self, pseudonym: str, name: str, fn: UpdateFn, *,
                   ttl_s: float | None = None) -> bytes | None:
        return self._update(check_pseudonym(pseudonym), check_aux_name(name), fn,
                            check_ttl(ttl_s))
