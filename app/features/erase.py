"""Remove one user's rows from the Feast online store (``DELETE /users/{id}``).

Feast has no per-entity delete, so this goes to each backend's layout: the SQLite store keeps
one table per feature view keyed by the serialised entity key; the Redis store keeps one hash
per entity holding every view's features, so one ``DEL`` removes them all.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import TYPE_CHECKING, Any

from app.features.client import FeatureStoreError, _local_path
from app.features.schema import USER_JOIN_KEY
from app.features.store import open_store
from app.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureStore

SQLITE_BUSY_TIMEOUT_SECONDS = 5.0


class OnlineUserEraser:
    """Deletes users' online rows through the store ``settings`` describe (no I/O until used)."""

    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self._redis_store: Any = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OnlineUserEraser:
        return cls(open_store(settings))

    def delete_user(self, user_id: str) -> int:
        """Delete every online row of ``user_id``; return how many rows (SQLite: one per view
        and feature; Redis: 1 for the entity's hash) went. Raises ``FeatureStoreError``."""
        try:
            if self._store.config.online_store.type == "redis":
                return self._delete_redis(user_id)
            return self._delete_sqlite(user_id)
        except FeatureStoreError:
            raise
        except Exception as exc:  # Feast surfaces redis, sqlite3 and its own error types
            raise FeatureStoreError(f"online delete failed: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        if self._redis_store is not None and self._redis_store._client is not None:
            self._redis_store._client.close()
            self._redis_store._client = None

    def _delete_sqlite(self, user_id: str) -> int:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.infra.online_stores.helpers import compute_table_id

        config = self._store.config
        path = _local_path(self._store, config.online_store.path)
        if not path.is_file():  # connecting would create an empty database there
            raise FeatureStoreError(f"SQLite online store {path} is missing")
        serialized = serialize_entity_key(
            _user_entity_key(user_id),
            entity_key_serialization_version=config.entity_key_serialization_version,
        )
        versioned = config.registry.enable_online_feature_view_versioning
        tables = [
            compute_table_id(config.project, view, versioned)
            for view in self._store.list_feature_views(allow_cache=True)
            if USER_JOIN_KEY in view.join_keys
        ]
        deleted = 0
        with closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_SECONDS)) as connection:
            connection.execute("PRAGMA secure_delete = ON")  # overwrite, not just unlink, rows
            with connection:  # one transaction
                existing = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
                for table in tables:
                    if table in existing:
                        quoted = table.replace('"', '""')
                        cursor = connection.execute(
                            f'DELETE FROM "{quoted}" WHERE entity_key = ?', (serialized,)
                        )
                        deleted += cursor.rowcount
            # A WAL journal still holds the pages as they were before; fold it into the
            # database and empty it (best effort: an open reader can keep it a while longer).
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def _delete_redis(self, user_id: str) -> int:
        from feast.infra.online_stores.helpers import _redis_key
        from feast.infra.online_stores.redis import RedisOnlineStore

        config = self._store.config
        if self._redis_store is None:
            self._redis_store = RedisOnlineStore()
        client = self._redis_store._get_client(config.online_store)
        key = _redis_key(
            config.project,
            _user_entity_key(user_id),
            entity_key_serialization_version=config.entity_key_serialization_version,
        )
        return int(client.delete(key))


def _user_entity_key(user_id: str) -> Any:
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=[USER_JOIN_KEY], entity_values=[Value(string_val=user_id)])
