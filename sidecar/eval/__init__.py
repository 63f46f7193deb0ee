"""Accuracy benchmarks: ``bioshard eval keystroke`` (MOBIKEY) and ``bioshard eval mouse``
(Balabit), comparing bioshard's production scorer with the classic one-class detectors.

Modules: :mod:`~sidecar.eval.metrics` (EER, zero-miss false-alarm rate, ROC/AUC),
:mod:`~sidecar.eval.detectors` (Killourhy & Maxion's detectors),
:mod:`~sidecar.eval.production` (the production scorer behind the same interface),
:mod:`~sidecar.eval.mobikey` / :mod:`~sidecar.eval.balabit` (dataset readers),
:mod:`~sidecar.eval.keystroke` / :mod:`~sidecar.eval.mouse` (the protocols),
:mod:`~sidecar.eval.report` (tables, plots) and :mod:`~sidecar.eval.cli`.
See docs/eval.md.
"""

from sidecar.eval.cli import add_parser
from sidecar.eval.errors import DatasetError, EvalError, UsageError

__all__ = ["DatasetError", "EvalError", "UsageError", "add_parser"]
