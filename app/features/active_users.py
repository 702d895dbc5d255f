"""The most active users, from the behaviour features the last build computed (the offline
``user_behaviour`` table: 30-day frequency, then interaction count)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from app.features.schema import USER_BEHAVIOUR_VIEW

_COLUMNS = ["user_id", "frequency_30d", "interaction_count"]


def most_active_users(offline_dir: Path, n: int) -> list[str]:
    """Up to ``n`` user ids, most active first (ties by id, so runs agree). Raises
    ``FileNotFoundError`` before the first build."""
    if n <= 0:
        return []
    table = pq.read_table(offline_dir / f"{USER_BEHAVIOUR_VIEW}.parquet", columns=_COLUMNS)
    order = pc.sort_indices(
        table,
        sort_keys=[
            ("frequency_30d", "descending"),
            ("interaction_count", "descending"),
            ("user_id", "ascending"),
        ],
    )
    return [str(user) for user in table.column("user_id").take(order[:n]).to_pylist()]
