"""Errors the benchmark commands turn into a message and exit code 2."""

from __future__ import annotations

__all__ = ["DatasetError", "EvalError", "UsageError"]


class EvalError(ValueError):
    """A problem the user can fix; the command prints it and exits with code 2."""


class DatasetError(EvalError):
    """The dataset path is missing or its files are not in the expected format."""


class UsageError(EvalError):
    """An option has a value the benchmark cannot use."""
