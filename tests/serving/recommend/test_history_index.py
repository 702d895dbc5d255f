"""history_indexer: a history's item indices, computed once per model version and history."""

from __future__ import annotations

import dataclasses
import gc
import tracemalloc

import numpy as np
import pytest

from app.bootstrap import load_current_model
from app.serving.model.ranking import LoadedModel
from app.serving.recommend.history_index import history_indexer
from app.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model(built_home: Settings) -> LoadedModel:
    return load_current_model(built_home)


def test_indices_are_the_models_and_remembered_read_only(model: LoadedModel) -> None:
    history = (*model.item_ids[:3], "never-seen", model.item_ids[7])
    indexer = history_indexer(max_bytes=2**20)

    first = indexer(model, history)
    again = indexer(model, tuple(history))  # an equal tuple, as a new read decodes

    assert first.tolist() == [0, 1, 2, 7]
    assert again is first
    with pytest.raises(ValueError, match="read-only"):
        first[0] = 5


def test_another_model_version_maps_the_history_afresh(model: LoadedModel) -> None:
    history = model.item_ids[:4]
    indexer = history_indexer(max_bytes=2**20)
    reordered = dataclasses.replace(
        model,
        manifest=model.manifest.model_copy(update={"version": "other"}),
        item_index={item: len(model.item_ids) - 1 - i for i, item in enumerate(model.item_ids)},
    )

    indexer(model, history)
    remapped = indexer(reordered, history)

    n = len(model.item_ids)
    assert remapped.tolist() == [n - 1, n - 2, n - 3, n - 4]


def test_without_a_budget_every_call_maps_afresh(model: LoadedModel) -> None:
    indexer = history_indexer(max_bytes=0)
    history = model.item_ids[:5]

    first, second = indexer(model, history), indexer(model, history)

    assert first is not second
    np.testing.assert_array_equal(first, second)


def test_the_memory_held_stays_within_the_budget_when_the_memo_alone_keeps_the_histories(
    model: LoadedModel,
) -> None:
    # Every event changes a profile, and each read then decodes its history afresh: new
    # strings that, once the decode memo has let them go, only this memo's key keeps alive.
    budget = 256 * 2**10
    indexer = history_indexer(max_bytes=budget)
    ids = model.item_ids
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for version in range(2_000):
            history = tuple(ids[(version + j) % len(ids)].encode().decode() for j in range(100))
            indexer(model, history)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert held < 1.2 * budget
