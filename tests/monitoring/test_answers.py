"""The answer reservoir: bounded, uniform, and emptied by each take."""

from __future__ import annotations

from app.monitoring.answers import AnswerReservoir
from app.monitoring.drift import SampledAnswer


def test_reservoir_keeps_a_bounded_uniform_sample_per_period() -> None:
    reservoir = AnswerReservoir(capacity=100, seed=1)
    for n in range(10_000):
        reservoir.offer(SampledAnswer(float(n), fallback=False, unknown_user=False))
    sample = reservoir.take()
    assert len(sample) == 100
    scores = [a.top_score for a in sample if a.top_score is not None]
    # Uniform over the whole period: about half from each half, not just the newest.
    early = sum(score < 5_000 for score in scores)
    assert 30 <= early <= 70
    assert reservoir.take() == []
    reservoir.offer(SampledAnswer(None, fallback=True, unknown_user=True))
    assert len(reservoir.take()) == 1
