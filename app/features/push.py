"""Online writes of users' behaviour rows through the ``user_behaviour_push`` push source.

The behaviour view reads from the push source, so a push lands in the same online rows that
batch materialization fills, and the next ``FeastFeatureClient.get_user`` sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import pandas as pd

from app.features.client import FeastFeatureClient
from app.features.schema import (
    EVENT_TIMESTAMP,
    USER_BEHAVIOUR_PUSH_SOURCE,
    USER_JOIN_KEY,
    UserFeatures,
)
from app.features.store import open_store
from app.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore


class ProfileWriteError(RuntimeError):
    """The online store did not take the pushed rows."""


class ProfileWriter(Protocol):
    """What the event path needs to store updated behaviour features."""

    def write(self, profiles: Sequence[UserFeatures], at: datetime) -> None:
        """Store the behaviour features of every profile in one batch, stamped ``at``.
        Raises ``ProfileWriteError`` when the store fails."""
        ...

    def close(self) -> None:
        """Release connections; the writer is not used afterwards."""
        ...


class FeastProfileWriter:
    """``ProfileWriter`` over its own ``FeatureStore`` (same config as the read client)."""

    def __init__(self, store: FeatureStore) -> None:
        self._store = store

    @classmethod
    def from_settings(cls, settings: Settings) -> FeastProfileWriter:
        """A writer for the store ``settings`` describe (nothing is opened yet)."""
        return cls(open_store(settings))

    def write(self, profiles: Sequence[UserFeatures], at: datetime) -> None:
        """One push of every profile's behaviour row."""
        if not profiles:
            return
        from feast.data_source import PushMode

        try:
            self._store.push(
                USER_BEHAVIOUR_PUSH_SOURCE, behaviour_frame(profiles, at), to=PushMode.ONLINE
            )
        except Exception as exc:  # Feast surfaces redis, sqlite3 and its own error types
            raise ProfileWriteError(
                f"push of {len(profiles)} profiles failed: {type(exc).__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        """Close the online store connection, the way the read client closes its own."""
        FeastFeatureClient(self._store).close()


def behaviour_frame(profiles: Sequence[UserFeatures], at: datetime) -> pd.DataFrame:
    """The push rows: the join key, every behaviour feature with the view's dtypes, and the
    event timestamp (Redis keeps a row only when its timestamp is newer than the stored one)."""
    return pd.DataFrame(
        {
            USER_JOIN_KEY: pd.Series([p.user_id for p in profiles], dtype=object),
            "history_items": [list(p.history_items) for p in profiles],
            "history_timestamps": [[int(t) for t in p.history_timestamps] for p in profiles],
            "interaction_count": pd.Series([p.interaction_count for p in profiles], dtype="int64"),
            "recency_days": pd.Series([p.recency_days for p in profiles], dtype="float64"),
            "frequency_30d": pd.Series([p.frequency_30d for p in profiles], dtype="int64"),
            "monetary": pd.Series([p.monetary for p in profiles], dtype="float64"),
            "last_event_at": pd.Series([p.last_event_at for p in profiles], dtype="Int64"),
            "top_categories": [list(p.top_categories) for p in profiles],
            "top_category_scores": [[float(s) for s in p.top_category_scores] for p in profiles],
            EVENT_TIMESTAMP: pd.Series([at] * len(profiles), dtype="datetime64[us, UTC]"),
        }
    )
