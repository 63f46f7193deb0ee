"""The population prior: complete table, sane numbers, humans look human."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.features import MODALITIES
from sidecar.scoring.normalise import normalise
from sidecar.scoring.population import CORRELATIONS, POPULATION_TABLE, PopulationModel
from sidecar.scoring.synthetic import Persona, synthetic_sid, synthetic_window
from sidecar.telemetry import decode, encode_json


@pytest.mark.parametrize("modality", list(MODALITIES), ids=list(MODALITIES))
def test_table_covers_every_v1_feature_within_its_range(modality: str) -> None:
    """Every v1 feature has a population entry whose median lies in the documented range."""
    spec = MODALITIES[modality]
    assert set(POPULATION_TABLE[modality]) == set(spec.names)
    for fs in spec.features:
        median, scale, within = POPULATION_TABLE[modality][fs.name]
        assert fs.lo <= median <= fs.hi
        assert scale > 0 and 0 < within < 1


@pytest.mark.parametrize("modality", list(MODALITIES), ids=list(MODALITIES))
def test_covariance_is_a_positive_definite_correlation_matrix(modality: str) -> None:
    """The broad covariance is a correlation matrix and invertible."""
    cov = PopulationModel.default().prior(modality).covariance
    np.testing.assert_allclose(np.diag(cov), 1.0)
    assert np.linalg.eigvalsh(cov).min() > 0.04
    for a, b, _ in CORRELATIONS[modality]:
        assert a in MODALITIES[modality].names and b in MODALITIES[modality].names


@pytest.mark.parametrize("modality", list(MODALITIES), ids=list(MODALITIES))
def test_population_median_normalises_to_zero(modality: str) -> None:
    """The table's medians are the origin of normalised space."""
    pop = PopulationModel.default()
    medians = {name: row[0] for name, row in POPULATION_TABLE[modality].items()}
    x, mask = normalise(modality, medians, pop)
    assert mask.all()
    np.testing.assert_allclose(x, 0.0, atol=1e-12)
    assert pop.tail(modality, x, mask) == pytest.approx(1.0)


def test_synthetic_humans_score_as_plausible_humans() -> None:
    """Under 2 % of windows from 300 synthetic humans have a population tail below 1e-3."""
    pop = PopulationModel.default()
    rng = np.random.default_rng(0)
    tails = []
    for seed in range(300):
        persona = Persona.touch_user(seed) if seed % 3 == 0 else Persona.human(seed)
        doc = synthetic_window(persona, rng, sid=synthetic_sid(rng), seq=0, ts_ms=1)
        for name, mw in decode(encode_json(doc)).modalities.items():
            x, mask = normalise(name, mw.features, pop)
            tails.append(pop.tail(name, x, mask))
    assert np.mean(np.array(tails) < 1e-3) < 0.02


def test_absurd_features_have_tiny_population_tail() -> None:
    """A window far outside human ranges is very unlikely under the population."""
    pop = PopulationModel.default()
    feats = {"hold_mean": 1900.0, "hold_std": 900.0, "dd_mean": 4800.0, "dd_std": 1.0,
             "ud_mean": -1500.0, "ud_std": 1.0, "rate": 0.1, "pause_ratio": 1.0,
             "backspace_ratio": 1.0}
    x, mask = normalise("keys", feats, pop)
    assert pop.tail("keys", x, mask) < 1e-12


def test_rejects_bad_tables() -> None:
    """A table with a non-positive scale or non-PD correlations is refused."""
    table = {m: dict(rows) for m, rows in POPULATION_TABLE.items()}
    table["keys"]["rate"] = (5.0, 0.0, 0.3)
    with pytest.raises(ValueError, match=r"keys\.rate"):
        PopulationModel(table)
    bad = dict(CORRELATIONS)
    bad["scroll"] = (("speed_mean", "speed_std", 0.99), ("speed_mean", "delta_mean", 0.99),
                     ("speed_std", "delta_mean", -0.99))
    with pytest.raises(ValueError, match="positive definite"):
        PopulationModel(POPULATION_TABLE, bad)
