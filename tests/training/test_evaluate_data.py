"""The train part written back as a RecBole dataset."""

from __future__ import annotations

import pandas as pd
import pytest

from app.data.ingest import ingest, load_dataset
from app.training.evaluate_data import write_atomic_interactions


def interactions(rows: list[tuple[str, str, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return frame.assign(event_type="view", value=1.0)


def test_written_train_part_ingests_back_unchanged(tmp_path):
    rows = [("u 1", "007", 1_700_000_000 + k) for k in range(3)] + [("u2", "NA", 1_700_000_500)]
    path = write_atomic_interactions(interactions(rows), tmp_path / "shop" / "shop.inter")
    ingest(path.parent, tmp_path / "data")
    back = load_dataset(tmp_path / "data").interactions
    assert sorted(zip(back["user_id"], back["item_id"], back["timestamp"], strict=True)) == sorted(
        rows
    )


def test_ids_with_tabs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="tab or newline"):
        write_atomic_interactions(interactions([("a\tb", "x", 1)]), tmp_path / "x.inter")
