import numpy as np

from app.serving.top_k import top_k


def test_top_k_orders_best_first_and_skips_excluded() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3], dtype=np.float32)
    idx, vals = top_k(scores, 3, np.array([1], dtype=np.int64))
    assert idx.tolist() == [3, 2, 4]
    assert vals.tolist() == [np.float32(0.7), np.float32(0.5), np.float32(0.3)]


def test_top_k_returns_fewer_when_catalogue_is_exhausted() -> None:
    scores = np.array([0.2, 0.4, 0.6], dtype=np.float32)
    idx, _ = top_k(scores, 10, np.array([0, 2], dtype=np.int64))
    assert idx.tolist() == [1]


def test_top_k_does_not_modify_the_callers_scores() -> None:
    scores = np.array([0.2, 0.4], dtype=np.float32)
    top_k(scores, 1, np.array([1], dtype=np.int64))
    assert scores.tolist() == [np.float32(0.2), np.float32(0.4)]


def test_top_k_with_everything_excluded_is_empty() -> None:
    idx, vals = top_k(np.ones(3, dtype=np.float32), 2, np.array([0, 1, 2], dtype=np.int64))
    assert idx.size == 0
    assert vals.size == 0
