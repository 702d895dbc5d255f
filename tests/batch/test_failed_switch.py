"""A build whose online-store fill fails after the switch puts the previous tables back and
publishes nothing: the failure is recorded, the model in use stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.data.synthetic import generate_shop
from app.data.versions import current_record, read_history
from app.settings import Settings
from app.training.pipeline import build
from tests.batch.conftest import home_state


def test_online_store_down_at_the_switch_leaves_the_last_good_build(
    versioned_home: Settings, tmp_path: Path
) -> None:
    before = home_state(versioned_home)
    record_before = current_record(versioned_home.versions_dir)
    shop = generate_shop(tmp_path / "source", n_users=400, n_items=150, n_events=12_000, seed=5)
    # Nothing listens on port 1: materialising into this Redis fails after training.
    unreachable = versioned_home.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})

    with pytest.raises(Exception, match=r"Connection refused|Error 111"):
        build(unreachable, shop, tuning_budget_seconds=3)

    assert home_state(versioned_home) == before
    assert current_record(versioned_home.versions_dir) == record_before
    assert read_history(versioned_home.versions_dir)[-1].outcome == "failed"
    leftovers = [p.name for p in versioned_home.home.rglob(".*") if "staging" in p.name]
    assert leftovers == []
    assert [p for p in versioned_home.home.iterdir() if "retired" in p.name] == []
