"""Every view of a feature service in one online-store request.

Feast's ``OnlineStore.online_read`` reads one feature view per call: for the three user views
of ``recommend_v1`` that is three SQLite queries (each also converting timestamps serving never
reads) or three Redis round trips per ``/recommend``. Both stores Feast ships keep an entity's
views where one request reaches them all: SQLite has a table per view, read by one
``UNION ALL`` query; Redis keeps one hash per entity, read by one ``HMGET`` of every view's
fields. The readers use Feast's own table names, key encoding and value decoding, and answer
what ``online_read`` view by view answers (``tests/features`` compares them); measured on
ml-100k they take a fifth (SQLite) and a third (Redis) of the per-view reads' CPU.

They answer each value as the store holds it, a serialised ``Value``: decoding is the
client's, which remembers what it decoded by those bytes (``client.FeastFeatureClient``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from feast import FeatureStore, FeatureView
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.infra.online_stores.sqlite import SqliteOnlineStore
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.repo_config import RepoConfig

# Each view with the features to read from it.
Views = Sequence[tuple["FeatureView", Sequence[str]]]


class ViewsReader(Protocol):
    def __call__(self, keys: Sequence[EntityKey]) -> list[dict[str, bytes]]:
        """Each key's serialised ``Value`` of every view's features (a feature without a
        row: absent; Redis: an empty value, as Feast's reader answers)."""
        ...


def views_reader(store: FeatureStore, views: Views) -> ViewsReader | None:
    """A one-request reader for ``store``'s online store, or None for a store type without
    one (read view by view)."""
    # Imported here: this module is loaded before Feast is (import feast takes seconds).
    from feast.infra.online_stores.redis import RedisOnlineStore
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    online_store = store.provider.online_store
    if isinstance(online_store, SqliteOnlineStore):
        return SqliteViewsReader(store.config, online_store, views)
    if isinstance(online_store, RedisOnlineStore):
        return RedisViewsReader(store.config, online_store, views)
    return None


class SqliteViewsReader:
    """One ``UNION ALL`` query over the views' tables (Feast: one query per view)."""

    def __init__(self, config: RepoConfig, online_store: SqliteOnlineStore, views: Views) -> None:
        from feast.infra.online_stores.sqlite import _quote_id, _table_id

        versioning = config.registry.enable_online_feature_view_versioning
        # Feast's table holds every feature of the view: the query selects the requested ones.
        self._tables = tuple(
            (_quote_id(_table_id(config.project, view, versioning)), tuple(names))
            for view, names in views
        )
        self._config = config
        self._online_store = online_store

    def __call__(self, keys: Sequence[EntityKey]) -> list[dict[str, bytes]]:
        from feast.infra.key_encoding_utils import serialize_entity_key

        version = self._config.entity_key_serialization_version
        encoded = [
            serialize_entity_key(key, entity_key_serialization_version=version) for key in keys
        ]
        # Feast keeps the connection (and reopens it after ``close``); ask for it each time.
        connection = self._online_store._get_conn(self._config)
        found: dict[bytes, dict[str, bytes]] = {}
        for entity_key, name, blob in connection.execute(
            _union_sql(self._tables, len(encoded)), encoded
        ):
            found.setdefault(entity_key, {})[name] = blob
        return [dict(found.get(key, {})) for key in encoded]


@lru_cache(maxsize=64)
def _union_sql(tables: tuple[tuple[str, tuple[str, ...]], ...], n_keys: int) -> str:
    """One SELECT per table of its named features, each matching the same ``n_keys``
    numbered parameters."""
    keys = ",".join(f"?{i}" for i in range(1, n_keys + 1))
    return " UNION ALL ".join(
        f"SELECT entity_key, feature_name, value FROM {table} "
        f"WHERE entity_key IN ({keys}) AND feature_name IN ({','.join(map(_literal, names))})"
        for table, names in tables
    )


def _literal(text: str) -> str:
    """``text`` as an SQL string literal (feature names come from the registry)."""
    return "'" + text.replace("'", "''") + "'"


class RedisViewsReader:
    """One ``HMGET`` per entity of every view's fields (Feast: one round trip per view)."""

    def __init__(self, config: RepoConfig, online_store: RedisOnlineStore, views: Views) -> None:
        from feast.infra.online_stores.redis import _versioned_fv_name

        self._config = config
        self._online_store = online_store
        self._fields: list[str | bytes] = []
        # Each feature's name in reply order; None for a view's timestamp field (not served).
        self._names: list[str | None] = []
        for view, names in views:
            requested, fields = online_store._generate_hset_keys_for_features(
                view, list(names), fv_name_override=_versioned_fv_name(view, config)
            )
            self._fields += fields
            # Feast appends the view's timestamp field to both lists.
            self._names += [*requested[:-1], None]

    def __call__(self, keys: Sequence[EntityKey]) -> list[dict[str, bytes]]:
        store = self._online_store
        redis_keys = store._generate_redis_keys_for_entities(self._config, list(keys))
        replies = store._read_hash_fields(self._config, [(key, self._fields) for key in redis_keys])
        # A field the hash lacks is an empty value, as Feast's ``_get_features_for_entity``
        # answers it (it decodes to None).
        return [
            {
                name: bytes(blob or b"")
                for name, blob in zip(self._names, reply, strict=True)
                if name
            }
            for reply in replies
        ]
