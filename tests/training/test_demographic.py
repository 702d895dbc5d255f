from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from app.training.demographic import (
    DemographicModel,
    fit_demographic,
    fit_token_items,
    fit_token_lift,
)
from app.training.hybrid import HybridParams, HybridRecommender
from app.training.types import TrainingData


def test_each_group_ranks_its_own_items_first() -> None:
    # Tokens: 0 = gender=F, 1 = gender=M. Women use items 0-1, men items 2-3, and item 4 is
    # used by everyone, so it stays high for both through the item means.
    tokens = sp.csr_matrix(np.array([[1, 0]] * 10 + [[0, 1]] * 10, dtype=float))
    women = [[1, 1, 0, 0, 1]] * 10
    men = [[0, 0, 1, 1, 1]] * 10
    interactions = sp.csr_matrix(np.array(women + men, dtype=float))
    weights = fit_demographic(tokens, interactions, l2=1.0)
    assert set(np.argsort(-weights[0])[:3]) == {0, 1, 4}
    assert set(np.argsort(-weights[1])[:3]) == {2, 3, 4}
    assert weights[0, 0] > weights[1, 0]


def test_users_without_interactions_do_not_drag_weights_down() -> None:
    tokens = sp.csr_matrix(np.array([[1.0], [1.0], [1.0]]))
    active_only = fit_demographic(tokens[:1], sp.csr_matrix(np.array([[1.0, 0.0]])), l2=1.0)
    with_idle = fit_demographic(tokens, sp.csr_matrix(np.array([[1.0, 0.0], [0, 0], [0, 0]])), 1.0)
    np.testing.assert_allclose(active_only, with_idle)


def test_token_lift_matches_hand_counts() -> None:
    # Tokens 0 (users 0, 1) and 1 (users 2, 3); user 4 has no interactions and is ignored.
    tokens = sp.csr_matrix(np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0]], dtype=float))
    interactions = sp.csr_matrix(
        np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)
    )
    lift = fit_token_lift(tokens, interactions, shrinkage=1.0)
    # 4 active users; P(item) = (users + 0.5) / 5 = 0.5, 0.5, 0.3. Token 0's users: 2, 1, 0
    # of its 2 users per item, plus one pseudo-user at P(item): (2.5, 1.5, 0.3) / 3.
    expected_token0 = np.log(np.array([2.5 / 3 / 0.5, 1.5 / 3 / 0.5, 0.3 / 3 / 0.3]))
    np.testing.assert_allclose(lift[0], expected_token0, rtol=1e-6)
    assert lift.dtype == np.float32
    assert lift.shape == (2, 3)


def test_token_lift_shrinks_to_nothing_and_refuses_no_shrinkage() -> None:
    tokens = sp.csr_matrix(np.array([[1.0], [1.0], [0.0]]))
    interactions = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    assert np.abs(fit_token_lift(tokens, interactions, shrinkage=1e9)).max() < 1e-6
    assert fit_token_lift(tokens, interactions, shrinkage=1.0)[0, 0] > 0
    with pytest.raises(ValueError, match="shrinkage"):
        fit_token_lift(tokens, interactions, shrinkage=0.0)


def test_an_unknown_demographic_model_is_refused_by_name() -> None:
    tokens = sp.csr_matrix(np.array([[1.0]]))
    with pytest.raises(ValueError, match="'softmax'"):
        fit_token_items("softmax", 1.0, tokens, sp.csr_matrix(np.array([[1.0]])))  # type: ignore[arg-type]


@pytest.mark.parametrize("demo_model", ["ridge", "lift"])
def test_cold_user_gets_their_groups_items(
    planted_data: TrainingData, demo_model: DemographicModel
) -> None:
    params = HybridParams(w_pop=0.0, w_demo=1.0, demo_model=demo_model, demo_strength=10.0)
    model = HybridRecommender(params).fit(planted_data)
    female = planted_data.tokens.index("gender=F")
    male = planted_data.tokens.index("gender=M")
    no_history = np.empty(0, dtype=np.int64)
    top, _ = model.recommend([no_history, no_history], [np.array([female]), np.array([male])], k=5)
    categories = [
        {model.item_ids_[i][0] for i in row if model.item_ids_[i][0] != "c"} for row in top
    ]
    assert categories == [{"a"}, {"b"}]
