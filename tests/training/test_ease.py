from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.training.content import content_similarity
from app.training.ease import check_dense_size, ease_neighbours, fit_ease


def test_three_items_that_always_co_occur_in_pairs_get_one_third() -> None:
    # Every pair co-occurs twice and every item has 3 users: G = 2I + 2J with λ = 1, whose
    # inverse is 0.5·I - 0.125·J, so every off-diagonal weight is 0.125 / 0.375 = 1/3.
    users = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 1], [0, 1, 1], [1, 1, 1]], float))
    weights = fit_ease(users, l2=1.0)
    expected = np.full((3, 3), 1 / 3)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(weights, expected, atol=1e-6)


def test_matches_the_closed_form_with_zero_diagonal() -> None:
    rng = np.random.default_rng(1)
    users = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(float))
    weights = fit_ease(users, l2=5.0)
    precision = np.linalg.inv(users.T.toarray() @ users.toarray() + 5.0 * np.eye(12))
    expected = -precision / np.diag(precision)
    np.fill_diagonal(expected, 0.0)
    assert weights.dtype == np.float32
    assert np.all(np.diag(weights) == 0.0)
    np.testing.assert_allclose(weights, expected, atol=1e-5)


def test_larger_l2_shrinks_weights() -> None:
    rng = np.random.default_rng(2)
    users = sp.csr_matrix((rng.random((40, 12)) < 0.3).astype(float))
    assert np.abs(fit_ease(users, 500.0)).sum() < np.abs(fit_ease(users, 5.0)).sum()


def test_rejects_non_positive_l2_and_oversized_catalogues() -> None:
    with pytest.raises(ValueError, match="l2"):
        fit_ease(sp.csr_matrix(np.eye(2)), 0.0)
    with pytest.raises(ValueError, match="max_dense_items=10"):
        check_dense_size(11, 10)


def test_content_similarity_is_cosine_over_item_tokens() -> None:
    # Items 0 and 1 share one of two tokens; item 2 shares nothing; item 3 has no tokens.
    tokens = sp.csr_matrix(
        np.array([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=float)
    )
    similarity = content_similarity(tokens)
    assert similarity[0, 1] == pytest.approx(0.5)
    assert similarity[1, 0] == pytest.approx(0.5)
    assert similarity[0, 2] == 0.0
    assert not similarity[3].any()
    assert np.all(np.diag(similarity) == 0.0)


def test_ease_neighbours_list_the_largest_positive_weights_of_the_fitted_items_only() -> None:
    rng = np.random.default_rng(2)
    users = sp.csr_matrix((rng.random((60, 8)) < 0.4).astype(float))
    items = np.array([1, 3, 4, 6])
    indices, scores = ease_neighbours(users, items, l2=2.0, m=2)
    weights = fit_ease(sp.csr_matrix(users[:, items]), 2.0)
    assert indices.shape == scores.shape == (8, 2)
    for row, item in enumerate(items):
        ranked = np.argsort(-weights[row], kind="stable")[:2]
        expected = [items[k] if weights[row, k] > 0 else -1 for k in ranked]
        assert indices[item].tolist() == expected
        listed = indices[item] >= 0
        np.testing.assert_allclose(scores[item][listed], weights[row, ranked][listed], rtol=1e-6)
    others = np.setdiff1d(np.arange(8), items)
    assert (indices[others] == -1).all()
    assert np.isneginf(scores[others]).all()
