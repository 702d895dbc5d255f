"""Online feature reads for the request path.

``FeastFeatureClient`` keeps one ``FeatureStore`` and the ``recommend_v1`` feature service for
the life of the process: the registry is read once (on first use), then each ``get_user`` is
one online-store read plus a direct decode of the stored protobufs (about twice as fast as
``OnlineResponse.to_dict()``). Decoded values are remembered by their stored bytes
(``decoded_memo_bytes``): a profile unchanged since its last read, the common case for a user
browsing, is read but not decoded again, and its history comes back as the same tuple, which
serving maps to item indices once (``serving.recommend.history_index``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from app.features.online_reads import Views, ViewsReader, views_reader
from app.features.schema import (
    RECOMMEND_FEATURE_SERVICE,
    USER_ATTRIBUTE_FEATURES,
    USER_BEHAVIOUR_FEATURES,
    USER_JOIN_KEY,
    USER_SEGMENT_FEATURES,
    UserFeatures,
)
from app.features.store import open_store
from app.infra.memo import memoised
from app.settings import Settings

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore, FeatureView
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

# Read by ping(); an id no real user has, so the probe reads nothing but still hits the store.
PING_USER_ID = "\x00recserve-ping"
T = TypeVar("T")
_FEATURES = frozenset(USER_ATTRIBUTE_FEATURES + USER_BEHAVIOUR_FEATURES + USER_SEGMENT_FEATURES)


class FeatureStoreError(RuntimeError):
    """The online feature store could not answer (down, missing, locked, misconfigured)."""


class FeatureClient(Protocol):
    """What serving needs from the feature store."""

    def get_user(
        self, user_id: str, features: Collection[str] | None = None
    ) -> UserFeatures | None:
        """The user's online features, or None when no view has a row for them. ``features``
        limits the read to those (the others read as unset); None reads them all.
        Raises ``FeatureStoreError`` when the store fails."""
        ...

    def get_users(
        self, user_ids: Sequence[str], features: Collection[str] | None = None
    ) -> dict[str, UserFeatures | None]:
        """``get_user`` for several users in one online read (the event path's batches).
        Raises ``FeatureStoreError`` when the store fails."""
        ...

    def ping(self) -> None:
        """Raise ``FeatureStoreError`` unless the online store is present and answering."""
        ...

    def close(self) -> None:
        """Release connections; the client is not used afterwards."""
        ...


class FeastFeatureClient:
    """``FeatureClient`` over a Feast ``FeatureStore``. Construction does no I/O."""

    def __init__(
        self,
        store: FeatureStore,
        service_name: str = RECOMMEND_FEATURE_SERVICE,
        sqlite_busy_timeout_ms: int = 50,
        decoded_memo_bytes: int = 0,
    ) -> None:
        self._store = store
        # Decoded values by their serialised bytes; a budget of 0: decode every read.
        self._decode = memoised(_decoded_and_footprint, _same_bytes, decoded_memo_bytes)
        self._sqlite_busy_timeout_ms = sqlite_busy_timeout_ms
        self._service_name = service_name
        self._service: FeatureService | None = None
        self._views: list[tuple[FeatureView, list[str]]] | None = None
        # Per subset of features asked for (None: all): its views, and a reader of them all
        # in one request (None: the store has none, read view by view).
        self._plans: dict[frozenset[str] | None, tuple[Views, ViewsReader | None]] = {}
        self._service_lock = threading.Lock()
        online = store.config.online_store
        self._sqlite_path = _local_path(store, online.path) if online.type == "sqlite" else None
        self._sqlite_file_id: tuple[int, int] | None = None  # (device, inode) Feast has open

    @classmethod
    def from_settings(cls, settings: Settings) -> FeastFeatureClient:
        """A client for the store ``settings`` describe (nothing is opened yet)."""
        return cls(
            open_store(settings),
            sqlite_busy_timeout_ms=settings.feast.sqlite_busy_timeout_ms,
            decoded_memo_bytes=settings.feast.decoded_memo_mb * 2**20,
        )

    def load_registry(self) -> None:
        """Read the registry and resolve the feature service and its views now (e.g. at
        start-up) rather than on the first request. Raises ``FeatureStoreError``."""
        self._load_views()

    def get_user(
        self, user_id: str, features: Collection[str] | None = None
    ) -> UserFeatures | None:
        """One online read of the feature service for ``user_id``."""
        return user_features(user_id, self._read([user_id], features)[0])

    def get_users(
        self, user_ids: Sequence[str], features: Collection[str] | None = None
    ) -> dict[str, UserFeatures | None]:
        """One online read for every distinct id of ``user_ids`` (the event path's batches)."""
        distinct = list(dict.fromkeys(user_ids))
        if not distinct:
            return {}
        rows = self._read(distinct, features)
        pairs = zip(distinct, rows, strict=True)
        return {user_id: user_features(user_id, row) for user_id, row in pairs}

    def _read(
        self, user_ids: Sequence[str], features: Collection[str] | None
    ) -> list[dict[str, Any]]:
        """Each user's feature values as Python values (``python_value``)."""
        return _converted(self._read_serialised(user_ids, features), self._decode)

    def read_values(
        self, user_ids: Sequence[str], features: Collection[str] | None = None
    ) -> list[dict[str, Value]]:
        """Each user's feature values as ``Value`` protos of their own (only ``features``
        when given): the event path changes and writes them back."""
        return _converted(self._read_serialised(user_ids, features), parse_value)

    def _read_serialised(
        self, user_ids: Sequence[str], features: Collection[str] | None
    ) -> list[dict[str, bytes]]:
        """Each user's feature values as the online store holds them, serialised ``Value``
        protos. The feature service's views are resolved once from the registry, so a read
        skips Feast's per-call request planning and response building; SQLite and Redis
        then read every view in one request (``online_reads``), other stores view by view
        through their own ``online_read`` (the interface Feast's ``get_online_features``
        calls)."""
        views, read_all_views = self._plan(features)
        rows: list[dict[str, bytes]] = [{} for _ in user_ids]
        if not views:  # none of the features asked for is served
            return rows
        self._follow_sqlite_file()
        keys = [user_entity_key(user_id) for user_id in user_ids]
        try:
            if read_all_views is not None:
                return read_all_views(keys)
            online_store = self._store.provider.online_store
            for view, names in views:
                # A copy: Feast's Redis store appends its timestamp field to the list it is
                # given, so a shared list would grow by one field per read, without bound.
                found = online_store.online_read(self._store.config, view, keys, list(names))
                for row, (_, values) in zip(rows, found, strict=True):
                    if values:
                        row.update(
                            (n, v.SerializeToString()) for n, v in values.items() if n in names
                        )
        except Exception as exc:  # Feast surfaces redis, sqlite3 and its own error types
            # No user id in the message: it ends up in logs and 503 details.
            raise FeatureStoreError(f"online read failed: {_describe(exc)}") from exc
        return rows

    def ping(self) -> None:
        """Check the registry and (SQLite) database files exist, then read a probe user."""
        self.get_user(PING_USER_ID)

    def close(self) -> None:
        """Close the online store connection, if one was opened.

        Feast's sync online stores have no close(): the SQLite connection (``_conn``) and the
        redis-py client (``_client``) are reached through private attributes.
        """
        self._close_online_connection()

    def reopen(self) -> None:
        """Drop the online store connection; the next read opens a fresh one (with the lock
        wait bounded). A SQLite handle opened while the file was read-only stays read-only
        after the file is writable again, so writes failing on it need a new one."""
        self._close_online_connection()
        self._sqlite_file_id = None

    def _close_online_connection(self) -> None:
        # Feast opens a new connection on its next read.
        provider = getattr(self._store, "_provider", None)
        online_store = getattr(provider, "online_store", None)
        for attribute in ("_conn", "_client"):
            connection = getattr(online_store, attribute, None)
            if connection is not None:
                connection.close()
                setattr(online_store, attribute, None)

    def _follow_sqlite_file(self) -> None:
        """Keep reads on the SQLite file now at the configured path.

        Feast opens the database once and keeps the handle, so a deleted file would still be
        read (while ``ping`` calls the store missing) and a replaced one (a rebuild) never
        seen; opening a missing path would create an empty database there. One ``stat`` per
        read (about a microsecond) notices both.
        """
        if self._sqlite_path is None:
            return
        try:
            stat = self._sqlite_path.stat()
        except FileNotFoundError as exc:
            raise FeatureStoreError(f"SQLite online store {self._sqlite_path} is missing") from exc
        file_id = (stat.st_dev, stat.st_ino)
        if file_id != self._sqlite_file_id:
            self._close_online_connection()
            self._sqlite_file_id = file_id
            self._bound_lock_wait()

    def _bound_lock_wait(self) -> None:
        """Open Feast's SQLite connection now and shorten its wait for a lock held by another
        process: the read runs on the event loop, so Feast's 5 s default would stall every
        request of the worker while, say, a backup holds the file."""
        # Feast offers no public handle on the connection.
        online_store: Any = self._store._get_provider().online_store
        connection = online_store._get_conn(self._store.config)
        connection.execute(f"PRAGMA busy_timeout = {int(self._sqlite_busy_timeout_ms)}")

    def _load_views(self) -> list[tuple[FeatureView, list[str]]]:
        """The feature service's views with the features it serves from each, read once."""
        service = self._service or self._load_service()
        with self._service_lock:
            if self._views is None:
                try:
                    self._views = [
                        (
                            self._store.get_feature_view(
                                projection.name, allow_registry_cache=True
                            ),
                            [f.name for f in projection.features if f.name in _FEATURES],
                        )
                        for projection in service.feature_view_projections
                    ]
                    self._plans[None] = (self._views, views_reader(self._store, self._views))
                except Exception as exc:
                    raise FeatureStoreError(
                        f"feature views of {self._service_name!r} unavailable: {_describe(exc)}"
                    ) from exc
            return self._views

    def _plan(self, features: Collection[str] | None) -> tuple[Views, ViewsReader | None]:
        """The views to read for ``features`` (None: all) and their one-request reader."""
        subset = None if features is None else frozenset(features)
        plan = self._plans.get(subset)
        if plan is not None:
            return plan
        views = self._views or self._load_views()
        if subset is None:
            return self._plans[None]
        narrowed = [
            (view, kept) for view, names in views if (kept := [n for n in names if n in subset])
        ]
        try:
            plan = self._plans[subset] = (narrowed, views_reader(self._store, narrowed))
        except Exception as exc:
            raise FeatureStoreError(f"online reader unavailable: {_describe(exc)}") from exc
        return plan

    def _load_service(self) -> FeatureService:
        with self._service_lock:
            if self._service is None:
                registry = _local_path(self._store, self._store.config.registry.path)
                # A missing registry file would be silently created empty by Feast.
                if not registry.is_file():
                    raise FeatureStoreError(
                        f"Feast registry {registry} is missing: apply the feature repo first"
                    )
                try:
                    self._service = self._store.get_feature_service(self._service_name)
                except Exception as exc:
                    raise FeatureStoreError(
                        f"feature service {self._service_name!r} unavailable: {_describe(exc)}"
                    ) from exc
            return self._service


def user_features(user_id: str, values: dict[str, Any]) -> UserFeatures | None:
    """The record for decoded feature ``values``; None when every feature is null."""
    if all(value is None for value in values.values()):
        return None
    return UserFeatures(
        user_id=user_id,
        attribute_tokens=values.get("attribute_tokens") or (),
        attributes_json=values.get("attributes_json"),
        history_items=values.get("history_items") or (),
        history_timestamps=values.get("history_timestamps") or (),
        interaction_count=values.get("interaction_count") or 0,
        recency_days=values.get("recency_days"),
        frequency_30d=values.get("frequency_30d") or 0,
        monetary=values.get("monetary") or 0.0,
        last_event_at=values.get("last_event_at"),
        top_categories=values.get("top_categories") or (),
        top_category_scores=values.get("top_category_scores") or (),
        segment=values.get("segment"),
    )


def user_entity_key(user_id: str) -> EntityKey:
    """The online store key of ``user_id``."""
    # Imported here: this module is loaded before Feast is (import feast takes seconds).
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    return EntityKey(join_keys=[USER_JOIN_KEY], entity_values=[Value(string_val=user_id)])


def python_value(value: Value) -> Any:
    """A ``feast.types.Value`` proto as a Python scalar, a tuple for lists, None when unset."""
    kind = value.WhichOneof("val")
    if kind is None or kind == "null_val":
        return None
    field = getattr(value, kind)
    return tuple(field.val) if kind.endswith("_list_val") else field


def _converted(rows: list[dict[str, bytes]], convert: Callable[[bytes], T]) -> list[dict[str, T]]:
    try:
        return [{name: convert(blob) for name, blob in row.items()} for row in rows]
    except Exception as exc:  # protobuf's DecodeError: a stored value is corrupt
        raise FeatureStoreError(f"online value undecodable: {_describe(exc)}") from exc


def parse_value(blob: bytes) -> Value:
    """A serialised ``feast.types.Value`` (as online stores keep it) as a proto of its own."""
    from feast.protos.feast.types.Value_pb2 import Value

    value = Value()
    value.ParseFromString(blob)
    return value


def _same_bytes(blob: bytes) -> bytes:
    return blob


def _decoded_and_footprint(blob: bytes) -> tuple[Any, int]:
    """A stored value decoded, and about the memory a memo entry of it holds: its key, its
    value and the entry itself."""
    value = python_value(parse_value(blob))
    held = sys.getsizeof(blob) + sys.getsizeof(value) + 100
    if isinstance(value, tuple):
        held += sum(map(sys.getsizeof, value))
    return value, held


def _describe(exc: BaseException) -> str:
    # redis-py 7's repr() drops the message ("network:ConnectionError"); keep both parts.
    return f"{type(exc).__name__}: {exc}"


def _local_path(store: FeatureStore, configured: str | Path) -> Path:
    """A configured path as Feast resolves it: relative paths are under the repo path."""
    path = Path(configured)
    return path if path.is_absolute() else Path(store.repo_path) / path
