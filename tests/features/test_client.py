"""FeastFeatureClient against a real registry and SQLite online store, and failure modes."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from app.features.client import FeastFeatureClient, FeatureStoreError
from app.features.offline import build_feature_tables
from app.features.schema import UserFeatures
from app.features.store import apply_and_materialize, open_store, sqlite_path
from app.settings import Settings
from app.training.segment_job import write_segments
from tests.features.factories import AS_OF, DAY, A, make_dataset

pytestmark = pytest.mark.integration

U1 = UserFeatures(
    user_id="u1",
    attribute_tokens=("age=20s", "gender=F", "income=q1", "hobbies=chess", "hobbies=go"),
    attributes_json='{"age": "24", "gender": "F", "income": 10.0, "hobbies": ["chess", "go"]}',
    history_items=("i2", "i1", "i3"),
    history_timestamps=(A - 20 * DAY, A - 10 * DAY, A - 10 * DAY),
    interaction_count=4,
    recency_days=10.0,
    frequency_30d=3,
    monetary=20.0,
    last_event_at=A - 10 * DAY,
    top_categories=("books", "music"),
    top_category_scores=(0.75, 0.25),  # exact in float32
    segment="s1",  # more interactions and spend than u4, the only other active user
)


def materialized_home(home: Path, **settings: object) -> Settings:
    """Build, apply and materialize the hand-built dataset under ``home``."""
    config = Settings(home=home, **settings)
    build_feature_tables(make_dataset(), config.offline_dir, as_of=AS_OF)
    write_segments(config, as_of=AS_OF)
    apply_and_materialize(config, as_of=AS_OF)
    return config


@pytest.fixture(scope="module")
def sqlite_settings(tmp_path_factory) -> Settings:
    return materialized_home(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def client(sqlite_settings):
    features = FeastFeatureClient.from_settings(sqlite_settings)
    yield features
    features.close()


def test_user_with_attributes_and_behaviour(client):
    assert client.get_user("u1") == U1


def test_reads_decode_alike_with_and_without_the_decode_memo(sqlite_settings):
    remembering = FeastFeatureClient(open_store(sqlite_settings), decoded_memo_bytes=2**20)
    decoding = FeastFeatureClient(open_store(sqlite_settings), decoded_memo_bytes=0)
    try:
        users = ["u1", "u2", "u3", "u4", "nobody"]
        first = remembering.get_users(users)
        assert first == decoding.get_users(users) == remembering.get_users(users)
        assert remembering.get_user("u1").history_items is first["u1"].history_items
        assert decoding.get_user("u1").history_items is not decoding.get_user("u1").history_items
    finally:
        remembering.close()
        decoding.close()


def test_partial_users_get_empty_defaults_for_the_missing_view(client):
    attributes_only = client.get_user("u3")
    behaviour_only = client.get_user("u4")

    assert attributes_only == UserFeatures(
        user_id="u3",
        attribute_tokens=("age=60s", "hobbies=chess"),
        attributes_json='{"age": "67", "hobbies": ["chess"]}',
        segment="new",
    )
    assert behaviour_only is not None
    assert behaviour_only.attribute_tokens == ()
    assert behaviour_only.attributes_json is None
    assert behaviour_only.history_items == ("i9", "i4")
    assert behaviour_only.monetary == 5.0
    assert behaviour_only.segment == "s2"


def test_unknown_user_is_none(client):
    assert client.get_user("nobody") is None


def test_ping_passes_on_a_materialized_store(client):
    client.ping()


def test_reads_do_not_wait_for_a_writer(client, sqlite_settings):
    """Materialize leaves the SQLite store in WAL mode, so a writer holding the write lock
    (e.g. the next materialize) does not stall reads for sqlite3's 5 s busy timeout."""
    writer = sqlite3.connect(sqlite_path(sqlite_settings), isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        started = time.perf_counter()
        assert client.get_user("u1") == U1
        assert time.perf_counter() - started < 0.5
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_missing_sqlite_store_fails_ping_and_reads(sqlite_settings, tmp_path):
    home = tmp_path / "copy"
    shutil.copytree(sqlite_settings.home, home)
    settings = Settings(home=home)
    sqlite_path(settings).unlink()
    features = FeastFeatureClient.from_settings(settings)

    with pytest.raises(FeatureStoreError, match=r"SQLite online store .* is missing"):
        features.ping()
    with pytest.raises(FeatureStoreError, match="is missing"):
        features.get_user("u1")
    # Feast would create an empty database where none is; the client never lets it open one.
    assert not sqlite_path(settings).exists()


def test_a_corrupt_stored_value_is_a_feature_store_error(sqlite_settings, tmp_path):
    """Serving turns a FeatureStoreError into the popularity fallback; anything else would
    answer 500."""
    home = tmp_path / "copy"
    shutil.copytree(sqlite_settings.home, home)
    settings = Settings(home=home)
    with sqlite3.connect(sqlite_path(settings)) as db:
        tables = [
            name
            for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name.endswith("user_behaviour")
        ]
        assert tables
        db.execute(f"UPDATE \"{tables[0]}\" SET value = x'ffffff'")
    features = FeastFeatureClient.from_settings(settings)
    try:
        with pytest.raises(FeatureStoreError, match="undecodable"):
            features.get_user("u1")
        with pytest.raises(FeatureStoreError, match="undecodable"):
            features.read_values(["u1"])
    finally:
        features.close()


def test_ping_notices_a_store_deleted_under_an_open_connection(sqlite_settings, tmp_path):
    home = tmp_path / "copy"
    shutil.copytree(sqlite_settings.home, home)
    settings = Settings(home=home)
    features = FeastFeatureClient.from_settings(settings)
    features.ping()

    database = sqlite_path(settings)
    saved = database.read_bytes()
    database.unlink()

    # Reads agree with ping, although Feast's open handle could still read the deleted file.
    with pytest.raises(FeatureStoreError, match="is missing"):
        features.get_user("u1")
    with pytest.raises(FeatureStoreError, match="is missing"):
        features.ping()
    database.write_bytes(saved)  # a new file at the path: the client reopens on it
    assert features.get_user("u1") == U1


def test_missing_registry_is_reported_not_created(tmp_path):
    settings = Settings(home=tmp_path)
    features = FeastFeatureClient.from_settings(settings)

    with pytest.raises(FeatureStoreError, match=r"registry .* is missing"):
        features.get_user("u1")
    assert not (settings.feast_dir / "registry.db").exists()


def test_unreachable_redis_fails_fast(sqlite_settings):
    """Port 1 refuses connections; the registry is shared with the SQLite home."""
    features = FeastFeatureClient.from_settings(
        sqlite_settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    )
    features.load_registry()  # the one-off registry read is not part of the timing

    started = time.perf_counter()
    with pytest.raises(FeatureStoreError, match="ConnectionError"):
        features.get_user("u1")
    with pytest.raises(FeatureStoreError, match="ConnectionError"):
        features.ping()
    assert time.perf_counter() - started < 0.5


def test_hung_redis_times_out_within_the_socket_timeout(sqlite_settings):
    """A server that accepts connections and never answers: the read must give up after the
    configured socket timeout, once (no retries with backoff)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        settings = sqlite_settings.model_copy(
            update={
                "redis_url": f"redis://127.0.0.1:{port}/0",
                "redis": sqlite_settings.redis.model_copy(
                    update={"socket_timeout_seconds": 0.2, "connect_timeout_seconds": 0.2}
                ),
            }
        )
        features = FeastFeatureClient.from_settings(settings)
        features.load_registry()

        started = time.perf_counter()
        with pytest.raises(FeatureStoreError, match="Timeout"):
            features.get_user("u1")
        elapsed = time.perf_counter() - started

    assert 0.2 <= elapsed < 0.6


def test_get_users_reads_several_users_at_once_as_get_user_does(client):
    found = client.get_users(["u1", "u3", "nobody", "u1", "u4"])

    assert list(found) == ["u1", "u3", "nobody", "u4"]  # distinct, first-seen order
    assert found["u1"] == U1
    assert found["nobody"] is None
    assert found["u3"] == client.get_user("u3")
    assert found["u4"] == client.get_user("u4")
    assert client.get_users([]) == {}


def test_a_read_of_the_behaviour_features_reads_nothing_else(sqlite_settings):
    from app.features.schema import USER_BEHAVIOUR_FEATURES

    client = FeastFeatureClient.from_settings(sqlite_settings)
    try:
        user = client.get_user("u1", USER_BEHAVIOUR_FEATURES)
        assert user is not None
        assert user.history_items == U1.history_items
        assert user.monetary == U1.monetary
        assert user.attribute_tokens == ()
        assert user.segment is None
        # Attributes only: nothing among the features asked for.
        assert client.get_user("u3", USER_BEHAVIOUR_FEATURES) is None
        assert client.get_user("u3") is not None
    finally:
        client.close()


def test_a_relative_home_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    """The README's commands use the default ``./.recserve``: Feast must not resolve it
    against its own repo path (that made HOME/feast/HOME/feast)."""
    monkeypatch.chdir(tmp_path)
    settings = materialized_home(Path(".recserve"))
    assert settings.home == tmp_path / ".recserve"
    client = FeastFeatureClient.from_settings(settings)
    try:
        assert client.get_user("u1") == U1
    finally:
        client.close()
    assert (tmp_path / ".recserve" / "feast" / "registry.db").is_file()
