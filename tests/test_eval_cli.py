"""Tests for sidecar.eval.cli: ``bioshard eval keystroke|mouse`` end to end."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.eval.cli import add_parser, main
from sidecar.eval.synthetic import write_balabit, write_mobikey

MOBIKEY = Path("/work/shared/datasets/mobikey")
BALABIT = Path("/work/shared/datasets/balabit-training")


@pytest.fixture(scope="module")
def mobikey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mobikey")
    write_mobikey(root, subjects=4, repetitions=12, password_types=(1,), seed=0)
    return root


@pytest.fixture(scope="module")
def balabit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("balabit")
    write_balabit(root, users=3, sessions=2, seconds=60, seed=0)
    return root


def _run_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    assert main([*argv, "--json", "--no-progress"]) == 0
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    return doc


def test_keystroke_json_shape(mobikey: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives protocol, password info and one row per detector and feature set."""
    doc = _run_json(capsys, ["keystroke", "--dataset", str(mobikey), "--feature-sets",
                             "timing,all", "--per-subject"])
    assert doc["benchmark"] == "keystroke"
    assert doc["passwords"] == [{"password_type": 1, "label": "strong", "keys": 13,
                                 "repetitions": 48, "dropped_corrections": 4, "subjects": 4,
                                 "skipped_subjects": 0}]
    assert len(doc["results"]) == 2 * 9
    assert {r["detector"] for r in doc["results"]} >= {"bioshard", "bioshard-adaptive"}
    row = next(r for r in doc["results"] if r["detector"] == "bioshard")
    assert set(row) == {"password", "feature_set", "detector", "dim", "subjects", "eer_mean",
                        "eer_std", "zero_miss_far_mean", "zero_miss_far_std", "per_subject"}
    assert 0.0 <= row["eer_mean"] <= 0.2 and len(row["per_subject"]) == 4
    assert doc["scoring_params"]["clip"] == 3.0


def test_keystroke_table_and_plot(mobikey: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json an aligned table is printed; --plot writes a PNG."""
    png = tmp_path / "det.png"
    code = main(["keystroke", "--dataset", str(mobikey), "--feature-sets", "timing",
                 "--detectors", "manhattan,bioshard", "--plot", str(png)])
    out, err = capsys.readouterr()
    assert code == 0
    assert "EER mean (std)" in out and "bioshard" in out
    assert "] 4/4  keystroke" in err
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mouse_json_shape(balabit: Path, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    """--json gives per-user results, pooled numbers, the learning curve and a plot."""
    png = tmp_path / "roc.png"
    doc = _run_json(capsys, ["mouse", "--dataset", str(balabit), "--window-ms", "10000",
                             "--curve", "2,4,all", "--plot", str(png)])
    assert doc["benchmark"] == "mouse"
    assert [u["user"] for u in doc["users"]] == ["user1", "user2", "user3"]
    assert {"eer", "auc", "learned_windows", "genuine_tiers"} <= set(doc["users"][0])
    assert [p["windows"] for p in doc["curve"]] == [2, 4, "all"]
    assert 0.0 <= doc["pooled_auc"] <= 1.0
    assert doc["session_level"]["genuine_sessions"] == 3
    assert [e["user"] for e in doc["extraction"]] == ["user1", "user2", "user3"]
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["keystroke", "--dataset", "/nonexistent/mobikey"], "MOBIKEY dataset not found"),
        (["mouse", "--dataset", "/nonexistent/balabit"], "Balabit dataset not found"),
        (["keystroke", "--dataset", "{mobikey}", "--detectors", "svm"], "unknown svm"),
        (["keystroke", "--dataset", "{mobikey}", "--feature-sets", "third"], "unknown 'third'"),
        (["keystroke", "--dataset", "{mobikey}", "--passwords", "easy"], "not in the dataset"),
        (["keystroke", "--dataset", "{mobikey}", "--scoring-param", "t1=0.9"], "t1 must be"),
        (["keystroke", "--dataset", "{mobikey}", "--scoring-param", "nope=1"], "NAME=VALUE"),
        (["mouse", "--dataset", "{balabit}", "--users", "user99"], "not in the dataset"),
        (["mouse", "--dataset", "{balabit}", "--curve", "0"], "--curve"),
        (["mouse", "--dataset", "{balabit}", "--train-fraction", "1.5"], "--train-fraction"),
    ],
    ids=["keystroke-missing-path", "mouse-missing-path", "unknown-detector",
         "unknown-feature-set", "absent-password", "invalid-param", "unknown-param",
         "unknown-user", "bad-curve", "bad-fraction"],
)
def test_usage_errors_exit_2_with_a_message(argv: list[str], message: str, mobikey: Path,
                                            balabit: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Bad paths and options print one clear error line and exit 2, no traceback."""
    argv = [a.format(mobikey=mobikey, balabit=balabit) for a in argv]
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bioshard eval: error:") and message in err
    assert "Traceback" not in err


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.extend(_actions(sub))
        elif not isinstance(action, argparse._HelpAction):
            out.append(action)
    return out


def test_every_option_has_help() -> None:
    """add_parser registers eval keystroke/mouse and documents every option."""
    parser = argparse.ArgumentParser(prog="bioshard")
    add_parser(parser.add_subparsers(dest="command"))
    actions = _actions(parser)
    assert actions and all(a.help for a in actions)
    args = parser.parse_args(["eval", "mouse", "--dataset", "x"])
    assert callable(args.func)


@pytest.mark.skipif(not MOBIKEY.is_dir(), reason="MOBIKEY dataset not available")
def test_real_mobikey_subset(capsys: pytest.CaptureFixture[str]) -> None:
    """On 6 real subjects of one password the scorers reach a sensible EER."""
    doc = _run_json(capsys, ["keystroke", "--dataset", str(MOBIKEY), "--subjects", "6",
                             "--passwords", "strong", "--feature-sets", "timing",
                             "--detectors", "scaled-manhattan,bioshard"])
    assert [r["subjects"] for r in doc["results"]] == [6, 6]
    assert all(0.0 <= r["eer_mean"] < 0.4 for r in doc["results"])


@pytest.mark.skipif(not BALABIT.is_dir(), reason="Balabit dataset not available")
def test_real_balabit_subset(capsys: pytest.CaptureFixture[str]) -> None:
    """Two real Balabit users through extraction and scoring, sub-sampled for speed."""
    doc = _run_json(capsys, ["mouse", "--dataset", str(BALABIT), "--users", "user21,user35",
                             "--max-windows-per-session", "40", "--curve", "10,all"])
    assert len(doc["users"]) == 2
    assert all(u["train_windows"] > 0 and u["genuine"] > 0 for u in doc["users"])
    assert 0.0 <= doc["pooled_auc"] <= 1.0
