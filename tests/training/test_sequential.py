"""The next-items regression: samples built by hand, sequence boundaries, planted order."""

from __future__ import annotations

import numpy as np
import pytest

from app.training.hybrid import recency_weights
from app.training.sequential import fit_next_items
from app.training.types import TrainingData


def seq(*items: int) -> np.ndarray:
    return np.array(items, dtype=np.int64)


def ridge(inputs: list[list[float]], targets: list[list[float]], l2: float) -> np.ndarray:
    x, y = np.array(inputs), np.array(targets)
    return np.linalg.solve(x.T @ x + l2 * np.eye(x.shape[1]), x.T @ y)


def test_samples_are_normalised_recency_weighted_pasts_and_next_items() -> None:
    # Cuts after item 1 and after item 2: past [0] -> next [1]; past [0, 1] with weights
    # 0.5 : 1 normalised to 1/3 : 2/3 -> next [2].
    weights = fit_next_items([seq(0, 1, 2)], 3, decay=0.5, context=2, horizon=1, step=1, l2=0.1)
    expected = ridge([[1, 0, 0], [1 / 3, 2 / 3, 0]], [[0, 1, 0], [0, 0, 1]], 0.1)
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)


def test_context_horizon_and_step_bound_each_sample() -> None:
    # step 2 cuts after the 2nd and 4th items; context 1 sees only the item before the cut;
    # horizon 2 targets the next two items, cut short at the end of the sequence.
    weights = fit_next_items(
        [seq(0, 1, 2, 3, 4)], 5, decay=1.0, context=1, horizon=2, step=2, l2=1.0
    )
    inputs = [[0, 1, 0, 0, 0], [0, 0, 0, 1, 0]]
    targets = [[0, 0, 1, 1, 0], [0, 0, 0, 0, 1]]
    np.testing.assert_allclose(weights, ridge(inputs, targets, 1.0), rtol=1e-5, atol=1e-6)


def test_a_cut_inside_a_step_moves_to_the_step_start() -> None:
    # Steps {0}, {1, 2}, {3}. Step 1 cuts after items 0, 1 and 2; the cut after item 1 falls
    # inside the basket {1, 2} and moves back to its start (a duplicate of the first cut), so
    # the samples are past [0] -> next [1, 2] and past [0, 1, 2] -> next [3].
    weights = fit_next_items(
        [seq(0, 1, 2, 3)],
        4,
        decay=1.0,
        context=3,
        horizon=2,
        step=1,
        l2=0.5,
        steps=[seq(4, 5, 5, 6)],
    )
    inputs = [[1, 0, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0]]
    targets = [[0, 1, 1, 0], [0, 0, 0, 1]]
    np.testing.assert_allclose(weights, ridge(inputs, targets, 0.5), rtol=1e-5, atol=1e-6)


def test_samples_never_cross_from_one_sequence_into_the_next() -> None:
    weights = fit_next_items(
        [seq(0), seq(1, 2), seq(3)], 4, decay=1.0, context=3, horizon=3, step=1, l2=1.0
    )
    # The only sample is past [1] -> next [2].
    expected = np.zeros((4, 4))
    expected[1, 2] = 1 / 2
    np.testing.assert_allclose(weights, expected, atol=1e-7)


def test_no_sample_gives_zero_weights() -> None:
    weights = fit_next_items([seq(0), seq(1)], 2, decay=0.9, context=5, horizon=5, step=1, l2=1)
    assert weights.shape == (2, 2)
    assert not weights.any()


def test_a_history_predicts_the_next_step_of_the_planted_walk(
    planted_data: TrainingData,
) -> None:
    weights = fit_next_items(
        planted_data.histories(100),
        planted_data.n_items,
        decay=0.9,
        context=10,
        horizon=3,
        step=2,
        l2=1.0,
    )
    names = planted_data.item_ids
    for category, start in (("a", 2), ("b", 9), ("a", 13)):
        history = [names.index(f"{category}{k:02d}") for k in range(start, start + 3)]
        scores = recency_weights([np.array(history)], planted_data.n_items, 0.9) @ weights
        scores[0, history] = -np.inf
        # Horizon 3 targets the next few steps of the walk, not only the very next one.
        ahead = {f"{category}{k:02d}" for k in (start + 3, start + 4)}
        assert names[int(np.argmax(scores))] in ahead


@pytest.mark.parametrize(
    "kwargs",
    [{"decay": 0.0}, {"decay": 1.5}, {"context": 0}, {"horizon": 0}, {"step": 0}, {"l2": 0.0}],
)
def test_invalid_hyperparameters_are_refused(kwargs: dict[str, float]) -> None:
    arguments = {"decay": 0.9, "context": 5, "horizon": 5, "step": 1, "l2": 1.0, **kwargs}
    with pytest.raises(ValueError, match="need"):
        fit_next_items([seq(0, 1)], 2, **arguments)  # type: ignore[arg-type]
