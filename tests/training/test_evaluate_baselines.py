"""The evaluation's baselines on hand-checkable data, and their tuning on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.data.types import Dataset, FieldType
from app.training.baselines import (
    EASE,
    DemographicRidge,
    ItemKNN,
    Popularity,
    RP3Beta,
    SegmentPopularity,
)
from app.training.evaluate_baselines import (
    L2_GRID,
    NEIGHBOURS_GRID,
    RIDGE_L2_GRID,
    UserFeatures,
    attribute_tokens_by_id,
    baseline_candidates,
    baseline_training_data,
    tuned_baselines,
    validation_ndcg,
    validation_splits,
    validation_users,
)
from app.training.recommender import recommend_in_blocks
from app.training.split import COLD_VALIDATION_FOLDS
from app.training.types import TrainingData

USERS = pd.DataFrame(
    {
        "user_id": ["f1", "f2", "m1", "m2", "new"],
        "gender": ["F", "F", "M", "M", "F"],
        "age": ["24", "29", "31", "35.0", "22"],
        "zip": ["1", "2", "3", "4", "5"],
    }
)
ITEMS = pd.DataFrame({"item_id": ["a", "b", "c", "d"]})
# Women take a and c, men b and c; c is the most popular overall; d nobody.
TRAIN = pd.DataFrame(
    {
        "user_id": ["f1", "f1", "f2", "f2", "m1", "m1", "m2", "m2"],
        "item_id": ["a", "c", "a", "c", "b", "c", "b", "c"],
        "timestamp": [1, 2, 1, 2, 1, 2, 1, 3],
    }
)
FIELDS = {"gender": FieldType.TOKEN, "age": FieldType.TOKEN, "zip": FieldType.TOKEN}
TOKENS = attribute_tokens_by_id(USERS, FIELDS, "user_id")


def data(train: pd.DataFrame = TRAIN) -> TrainingData:
    return baseline_training_data(train, Dataset(train, USERS, ITEMS), TOKENS)


def ask(model, users: list[str], k: int = 4, train: pd.DataFrame = TRAIN) -> list[list[str]]:
    fitted = data(train)
    model.fit(fitted)
    return recommend_in_blocks(model, *UserFeatures(fitted, TOKENS).of(users), k)


def test_users_carry_the_builds_attribute_tokens():
    assert TOKENS["m2"] == ("gender=M", "age=30s", "zip=4")
    assert attribute_tokens_by_id(pd.DataFrame({"zip": ["1"]}), {}, "user_id") == {}


def test_a_user_without_train_rows_is_described_by_tokens_alone():
    histories, tokens = UserFeatures(data(), TOKENS).of(["new", "f1"])
    assert len(histories[0]) == 0
    # gender=F and age=20s; zip=5 is no train user's token, so no recommender knows it.
    assert len(tokens[0]) == 2
    assert [data().item_ids[i] for i in histories[1]] == ["a", "c"]


def test_popularity_excludes_history_and_breaks_ties_by_index():
    assert ask(Popularity(), ["f1", "new"], k=3) == [["b", "d"], ["c", "a", "b"]]


def test_segment_popularity_prefers_the_users_segment_and_falls_back_to_global():
    # "new" is F|20s like f1 and f2: a and c tie at 2, global popularity puts c first.
    assert ask(SegmentPopularity(), ["new"], k=2) == [["c", "a"]]
    no_segment = {u: [t for t in tokens if t.startswith("gender")] for u, tokens in TOKENS.items()}
    fitted = baseline_training_data(TRAIN, Dataset(TRAIN, USERS, ITEMS), no_segment)
    model = SegmentPopularity().fit(fitted)
    assert recommend_in_blocks(model, *UserFeatures(fitted, no_segment).of(["new"]), 3) == [
        ["c", "a", "b"]
    ]


@pytest.mark.parametrize(
    "model", [EASE(l2=0.5), ItemKNN(neighbours=1), RP3Beta(alpha=1.0, beta=0.0)]
)
def test_item_item_baselines_recommend_what_co_occurs(model):
    partial = pd.concat(
        [TRAIN, pd.DataFrame({"user_id": ["new"], "item_id": ["a"], "timestamp": [5]})]
    )
    assert ask(model, ["new"], k=1, train=partial) == [["c"]]  # a co-occurs only with c


def test_item_item_baselines_on_a_large_catalogue_rank_only_the_most_popular_items():
    partial = pd.concat(
        [TRAIN, pd.DataFrame({"user_id": ["new"], "item_id": ["a"], "timestamp": [5]})]
    )
    # a (3 users) and c (4) are kept; b (2) and d (0) are outside the fitted catalogue.
    assert ask(EASE(l2=0.5, max_items=2), ["new", "m1"], train=partial) == [["c"], ["a"]]


def test_rp3beta_beta_lifts_less_popular_items():
    # u likes x; x co-occurs with the very popular p and the rarer r equally often.
    rows = [("u", "x", 1), ("v", "x", 1), ("v", "p", 2), ("w", "x", 1), ("w", "r", 2)]
    rows += [(f"o{k}", "p", 1) for k in range(6)]
    train = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = pd.DataFrame({"item_id": ["p", "r", "x"]})
    fitted = baseline_training_data(train, Dataset(train, pd.DataFrame(), items), {})
    features = UserFeatures(fitted, {}).of(["u"])
    plain = recommend_in_blocks(RP3Beta(1.0, 0.0).fit(fitted), *features, 1)
    lifted = recommend_in_blocks(RP3Beta(1.0, 0.8).fit(fitted), *features, 1)
    assert plain == [["p"]]
    assert lifted == [["r"]]


def test_item_knn_keeps_only_the_nearest_neighbours():
    model = ItemKNN(neighbours=1).fit(data())
    assert (np.count_nonzero(model.weights_, axis=1) <= 1).all()
    with pytest.raises(ValueError, match="neighbours"):
        ItemKNN(neighbours=0)


def test_demographic_ridge_ranks_the_groups_item_first_for_a_cold_user():
    ranked = ask(DemographicRidge(l2=0.1), ["new"])[0]
    assert ranked.index("a") < ranked.index("b")


def test_each_protocol_gets_its_baselines_with_grids():
    warm, cold = baseline_candidates("warm", data()), baseline_candidates("cold", data())
    assert list(warm) == ["popularity", "segment popularity", "EASE", "item-kNN", "RP3beta"]
    assert list(cold) == ["popularity", "segment popularity", "demographic ridge"]
    assert [m.params.l2 for m in warm["EASE"]()] == list(L2_GRID)
    assert [m.params.neighbours for m in warm["item-kNN"]()] == list(NEIGHBOURS_GRID)
    bare = baseline_training_data(TRAIN, Dataset(TRAIN, pd.DataFrame(), ITEMS), {})
    assert list(baseline_candidates("cold", bare)) == ["popularity"]


def test_tuning_picks_the_best_candidate_on_validation_and_refits_on_train(planted_data):
    tuned = {b.name: b for b in tuned_baselines("warm", planted_data)}
    assert tuned["popularity"].validation_ndcg is None  # nothing to choose
    ease = tuned["EASE"]
    assert ease.params["l2"] in L2_GRID
    assert ease.validation_ndcg is not None
    assert ease.validation_ndcg > 0
    assert ease.model.item_ids_ == planted_data.item_ids
    # The chosen λ is the best of the grid on the same validation split.

    (split,) = validation_splits("warm", planted_data)
    users = validation_users("warm", split)
    scores = {l2: validation_ndcg(EASE(l2), split, users) for l2 in L2_GRID}
    assert ease.validation_ndcg == pytest.approx(max(scores.values()))
    assert scores[ease.params["l2"]] == pytest.approx(max(scores.values()))
    # Cold: the mean over the build's cold folds decides.
    ridge = {b.name: b for b in tuned_baselines("cold", planted_data)}["demographic ridge"]
    folds = [(f, validation_users("cold", f)) for f in validation_splits("cold", planted_data)]
    assert len(folds) == COLD_VALIDATION_FOLDS
    means = {
        l2: np.mean([validation_ndcg(DemographicRidge(l2), f, u) for f, u in folds])
        for l2 in RIDGE_L2_GRID
    }
    assert ridge.params["l2"] == max(means, key=lambda l2: means[l2])
    assert ridge.validation_ndcg == pytest.approx(max(means.values()))
