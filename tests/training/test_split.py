"""The offline protocol's splits: one rule for the build's validation and the evaluation's
test, in index space (``TrainingData``) and in id space (interactions tables) alike."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.data.types import Dataset
from app.training.split import (
    cold_split,
    cold_user_split,
    cold_validation_folds,
    draw_cold_users,
    held_out_rows,
    protocol_split,
    time_split,
    warm_split,
)
from app.training.types import training_data_from


def interactions(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame.assign(event_type="view", value=1.0)


def held_items(rows: list[tuple[str, str, int]]) -> dict[str, set[str]]:
    frame = interactions(rows)
    mask = held_out_rows(
        frame["user_id"].to_numpy(), frame["item_id"].to_numpy(), frame["timestamp"].to_numpy(), 0.2
    )
    held: dict[str, set[str]] = {}
    for user, item in zip(frame["user_id"][mask], frame["item_id"][mask], strict=True):
        held.setdefault(user, set()).add(item)
    return held


def test_warm_split_holds_out_the_last_fifth_rounded_half_up():
    # 7 interactions: 7 * 0.2 = 1.4 -> 1 held out; 8: 1.6 -> 2; 2: 0.4 -> at least 1.
    rows = [("a", f"i{k}", 100 + k) for k in range(7)] + [("b", f"i{k}", 100 + k) for k in range(8)]
    rows += [("c", "i0", 1), ("c", "i1", 2)]
    split = warm_split(interactions(rows))
    assert split.relevant == {
        "a": frozenset({"i6"}),
        "b": frozenset({"i6", "i7"}),
        "c": frozenset({"i1"}),
    }
    assert len(split.train) == 6 + 6 + 1


def test_a_same_timestamp_group_is_never_cut():
    # 10 interactions, target 2; the last step is a basket of 3: it goes whole (3, off by 1),
    # never 2 of its 3 lines.
    rows = [("a", f"i{k}", k) for k in range(7)] + [("a", f"b{k}", 9) for k in range(3)]
    assert held_items(rows) == {"a": {"b0", "b1", "b2"}}
    # A basket of 6 ends 10 interactions: at least one whole step is held out, so all 6.
    rows = [("a", f"i{k}", k) for k in range(4)] + [("a", f"b{k}", 9) for k in range(6)]
    assert held_items(rows) == {"a": {f"b{k}" for k in range(6)}}


def test_the_cut_lands_on_the_step_boundary_nearest_the_share():
    # 20 interactions, target 4; steps from the end: 1, then a basket of 5 (total 6), ...
    # Holding out 1 (off by 3) loses to 6 (off by 2).
    rows = [("a", f"i{k}", k) for k in range(14)] + [("a", f"b{k}", 50) for k in range(5)]
    rows.append(("a", "last", 60))
    assert held_items(rows) == {"a": {"last", *(f"b{k}" for k in range(5))}}
    # Equally near (target 2 of 10; last steps 1 and then 2 more: 1 or 3): the larger.
    rows = [("a", f"i{k}", k) for k in range(7)] + [("a", "x", 20), ("a", "y", 20)]
    rows.append(("a", "z", 30))
    assert held_items(rows) == {"a": {"x", "y", "z"}}


def test_a_user_with_one_step_is_held_out_whole():
    rows = [("solo", "x", 5), ("basket", "p", 7), ("basket", "q", 7), ("b", "x", 1), ("b", "y", 2)]
    split = warm_split(interactions(rows))
    assert split.relevant["solo"] == frozenset({"x"})
    assert split.relevant["basket"] == frozenset({"p", "q"})
    assert not {"solo", "basket"} & set(split.train["user_id"])


def test_without_any_time_a_seeded_random_fifth_is_held_out_whatever_the_row_order():
    rows = [(f"u{u}", f"i{k:02d}", 0) for u in range(30) for k in range(10)]
    first = warm_split(interactions(rows)).relevant
    again = warm_split(interactions(rows[::-1])).relevant
    assert first == again
    assert all(len(items) == 2 for items in first.values())
    # Not the highest item ids (the order ties used to fall in): a random draw per user.
    assert sum(items == {"i08", "i09"} for items in first.values()) < 5


def test_the_split_does_not_depend_on_the_input_order():
    rows = [("a", "i0", 1), ("a", "i1", 2), ("a", "i2", 9), ("a", "i10", 9), ("a", "i3", 3)]
    assert warm_split(interactions(rows)).relevant == warm_split(interactions(rows[::-1])).relevant


def test_test_items_already_in_train_are_not_relevant():
    rows = [("a", "x", 1), ("a", "y", 2), ("a", "z", 3), ("a", "w", 4), ("a", "x", 5)]
    assert "a" not in warm_split(interactions(rows)).relevant


def test_index_space_and_id_space_give_the_same_warm_split():
    rng = np.random.default_rng(0)
    rows = [
        (f"u{u}", f"i{int(rng.integers(40))}", int(rng.integers(6)))
        for u in range(25)
        for _ in range(int(rng.integers(1, 15)))
    ]
    frame = interactions(rows).drop_duplicates(["user_id", "item_id", "timestamp"])
    by_ids = warm_split(frame).relevant
    data = training_data_from(Dataset(frame, pd.DataFrame(), pd.DataFrame()), {}, {})
    split = time_split(data, 0.2)
    by_index = {
        data.user_ids[u]: frozenset(data.item_ids[i] for i in split.targets[u])
        for u in split.users_with_targets()
    }
    assert by_index == by_ids


def test_cold_split_moves_a_tenth_of_users_deterministically():
    rows = [(f"u{u:02d}", f"i{(u + k) % 7}", k) for u in range(40) for k in range(3)]
    frame = interactions(rows)
    first = cold_split(frame, seed=3)
    assert first.relevant == cold_split(frame.sample(frac=1.0, random_state=1), seed=3).relevant
    assert len(first.relevant) == 4
    cold = set(first.relevant)
    assert not cold & set(first.train["user_id"])
    assert all(len(first.relevant[u]) == 3 for u in cold)
    assert set(cold_split(frame, seed=4).relevant) != cold
    # The build's cold validation draws the same users from the same data and seed.
    data = training_data_from(Dataset(frame, pd.DataFrame(), pd.DataFrame()), {}, {})
    drawn = cold_user_split(data, 0.1, seed=3).users_with_targets()
    assert {data.user_ids[u] for u in drawn} == cold


def test_cold_draws_are_capped_and_never_empty():
    assert len(draw_cold_users(np.arange(1000), 0.1, seed=0, max_users=30)) == 30
    assert len(draw_cold_users(np.arange(3), 0.1, seed=0)) == 1
    with pytest.raises(ValueError, match="share"):
        draw_cold_users(np.arange(3), 1.0, seed=0)


def test_protocol_split_is_the_named_split_and_refuses_others():
    rows = [(f"u{u:02d}", f"i{(u + k) % 7}", k) for u in range(40) for k in range(5)]
    frame = interactions(rows)
    assert protocol_split("warm", frame).relevant == warm_split(frame).relevant
    assert protocol_split("cold", frame, 3).relevant == cold_split(frame, seed=3).relevant
    with pytest.raises(ValueError, match="'hot'"):
        protocol_split("hot", frame)


def test_cold_validation_folds_are_disjoint_draws_of_a_tenth_of_the_users_each():
    rows = [(f"u{u:02d}", f"i{(u + k) % 7}", k) for u in range(40) for k in range(3)]
    data = training_data_from(Dataset(interactions(rows), pd.DataFrame(), pd.DataFrame()), {}, {})
    folds = cold_validation_folds(data, 0.1, folds=5, seed=0)
    cold = [set(fold.users_with_targets().tolist()) for fold in folds]
    assert [len(users) for users in cold] == [4] * 5
    assert len(set().union(*cold)) == 20  # no user in two folds
    for fold, users in zip(folds, cold, strict=True):
        assert not users & set(fold.train.user_index.tolist())  # all their rows held out
    assert [f.users_with_targets().tolist() for f in cold_validation_folds(data, 0.1, 5, 0)] == [
        sorted(users) for users in cold
    ]
    # Fewer folds when the users run out; the cap bounds each fold.
    assert len(cold_validation_folds(data, 0.3, folds=5, seed=0)) == 3
    assert {len(f.users_with_targets()) for f in cold_validation_folds(data, 0.1, 5, 0, 2)} == {2}


def test_a_held_out_user_keeps_only_tokens_someone_left_in_the_fit_carries():
    rows = [(f"u{u:02d}", f"i{(u + k) % 7}", k) for u in range(40) for k in range(3)]
    # Everyone shares gender and a zip region; each user also has a zip code of their own.
    tokens = {f"u{u:02d}": ("gender=F", "zip3=941", f"zip=941{u:02d}") for u in range(40)}
    data = training_data_from(
        Dataset(interactions(rows), pd.DataFrame(), pd.DataFrame()), tokens, {}
    )
    split = cold_user_split(data, 0.1, seed=3)
    kept = split.train.user_token_lists()

    for user in split.users_with_targets():
        assert [data.tokens[t] for t in kept[user]] == ["gender=F", "zip3=941"]
    user = int(split.train.user_index[0])  # still has interactions: keeps its own zip too
    assert [data.tokens[t] for t in kept[user]] == sorted(tokens[data.user_ids[user]])
    assert split.train.tokens == data.tokens  # indices are unchanged
