"""Builders for experiment configs as raw TOML-shaped dicts, so tests change one field at a time."""

from __future__ import annotations

from typing import Any

from app.experiments.config import Experiment, parse_experiments


def raw_experiment(experiment_id: str = "ab-1", **overrides: Any) -> dict[str, Any]:
    """A valid two-variant experiment as the TOML parser would return it."""
    raw: dict[str, Any] = {
        "id": experiment_id,
        "traffic_share": 1.0,
        "control": "control",
        "min_detectable_effect": 0.05,
        "variants": [
            {"name": "control", "weight": 1, "strategy": {"kind": "model"}},
            {"name": "treatment", "weight": 1, "strategy": {"kind": "diversified", "lambda": 0.5}},
        ],
    }
    raw.update(overrides)
    return raw


def experiment(experiment_id: str = "ab-1", **overrides: Any) -> Experiment:
    """A validated experiment built from ``raw_experiment``."""
    (built,) = parse_experiments({"experiments": [raw_experiment(experiment_id, **overrides)]})
    return built
