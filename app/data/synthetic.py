"""A synthetic shop in RecBole atomic format, realistic enough for a model to learn from.

Users act in sessions. A session picks a (category, price tier) group from the user's tastes
(see ``synthetic_catalog``); its first item is drawn by popularity and each next item is, most
of the time, a neighbour of the previous one (a similar product), otherwise another popular
item of the group, so "next item given recent items" is learnable. Every item seen is a
``view``; a funnel then adds ``click``, ``add_to_cart`` and ``purchase`` with decreasing
probability. Everything is vectorised over sessions, and the output is a pure function of the
arguments.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from app.data.synthetic_catalog import N_TIERS, Catalog, Population, make_catalog, make_population

EVENT_NAMES = ("view", "click", "add_to_cart", "purchase")
P_CLICK, P_CART, P_PURCHASE = 0.35, 0.35, 0.5
EVENTS_PER_VIEW = 1 + P_CLICK * (1 + P_CART * (1 + P_PURCHASE))
P_SESSION_CONTINUES = 0.7
MAX_SESSION_LENGTH = 30
P_NEIGHBOUR = 0.6
NEIGHBOUR_STEPS = np.array([-2, -1, 1, 1, 2])
HISTORY_SECONDS = 180 * 86_400
MEAN_GAP_SECONDS = 60.0
BASE_END = datetime(2024, 7, 1, tzinfo=UTC)
# Draw more sessions than needed, then keep whole sessions in random order up to n_events.
OVERDRAW = 1.15


def generate_shop(
    out_dir: Path,
    *,
    n_users: int = 2000,
    n_items: int = 800,
    n_events: int = 60000,
    seed: int = 0,
    name: str = "shop",
    cold_user_share: float = 0.05,
) -> Path:
    """Write ``out_dir/name/name.{inter,user,item}`` and return ``out_dir/name``.

    ``cold_user_share`` of the users have attributes but no events. The same arguments always
    give byte-identical files; timestamps span 180 days up to a date derived from ``seed``.
    """
    if n_users < 1 or n_events < 0:
        raise ValueError("n_users must be >= 1 and n_events >= 0")
    if not 0.0 <= cold_user_share < 1.0:
        raise ValueError(f"cold_user_share must be in [0, 1), got {cold_user_share}")
    rng = np.random.default_rng(seed)
    catalog = make_catalog(rng, n_items)
    population = make_population(rng, n_users, cold_user_share)
    end = int(BASE_END.timestamp()) + (seed % 97) * 86_400
    events = simulate_events(rng, catalog, population, n_events, end)

    dataset_dir = out_dir / name
    dataset_dir.mkdir(parents=True, exist_ok=True)
    users, items = population.table, catalog.table
    _write_atomic(
        dataset_dir / f"{name}.inter",
        {
            "user_id:token": users["user_id"].to_numpy()[events["user"]],
            "item_id:token": items["item_id"].to_numpy()[events["item"]],
            "event_type:token": np.array(EVENT_NAMES, dtype=object)[events["kind"]],
            "value:float": events["value"].to_numpy(),
            "timestamp:float": events["timestamp"].to_numpy(),
        },
    )
    _write_atomic(dataset_dir / f"{name}.user", _typed_columns(users, {"age": "float"}))
    _write_atomic(
        dataset_dir / f"{name}.item",
        _typed_columns(items, {"title": "token_seq", "price": "float"}),
    )
    return dataset_dir


def simulate_events(
    rng: np.random.Generator, catalog: Catalog, population: Population, n_events: int, end: int
) -> pd.DataFrame:
    """Exactly ``n_events`` events (columns user, item, kind, value, timestamp), user-sorted."""
    active = np.flatnonzero(population.activity > 0)
    if active.size == 0:
        raise ValueError("no active users: lower cold_user_share or raise n_users")
    mean_length = 1.0 / (1.0 - P_SESSION_CONTINUES)
    n_sessions = int(n_events / EVENTS_PER_VIEW / mean_length * OVERDRAW) + 20
    user = _session_users(rng, population.activity, active, n_sessions)
    length = np.minimum(rng.geometric(1.0 - P_SESSION_CONTINUES, n_sessions), MAX_SESSION_LENGTH)

    category = (population.category_cum_pref[user] < rng.random((n_sessions, 1))).sum(axis=1)
    category = np.minimum(category, population.category_cum_pref.shape[1] - 1)
    tier = np.rint(population.preferred_tier[user] + rng.normal(0.0, 0.7, n_sessions))
    group = category * N_TIERS + np.clip(tier, 0, N_TIERS - 1).astype(np.int64)

    session = np.repeat(np.arange(n_sessions), length)
    first_view = np.cumsum(length) - length
    item = _walk_sessions(rng, catalog, group, length, first_view)
    gaps = np.ceil(rng.exponential(MEAN_GAP_SECONDS, session.size)) + 1
    gaps[first_view] = 0
    elapsed = np.cumsum(gaps)
    start = end - 3_600 - rng.integers(0, HISTORY_SECONDS, n_sessions)
    view_time = start[session] + (elapsed - elapsed[first_view][session]).astype(np.int64)

    # Funnel steps happen a little after the view, each later than the previous step.
    step_delay = np.cumsum(rng.integers(2, 120, (3, session.size)), axis=0)
    click = rng.random(session.size) < P_CLICK
    cart = click & (rng.random(session.size) < P_CART)
    purchase = cart & (rng.random(session.size) < P_PURCHASE)
    views = [np.arange(session.size)] + [np.flatnonzero(m) for m in (click, cart, purchase)]
    kind = np.concatenate([np.full(v.size, k, dtype=np.int8) for k, v in enumerate(views)])
    view = np.concatenate(views)
    delay = np.concatenate([np.zeros(session.size, np.int64)] + [
        step_delay[k][v] for k, v in enumerate(views[1:])
    ])  # fmt: skip
    price = catalog.table["price"].to_numpy()
    events = pd.DataFrame(
        {
            "user": user[session[view]],
            "item": item[view],
            "kind": kind,
            "value": np.where(kind >= EVENT_NAMES.index("add_to_cart"), price[item[view]], 1.0),
            "timestamp": view_time[view] + delay,
            "session_rank": rng.permutation(n_sessions)[session[view]],
        }
    ).drop_duplicates(subset=["user", "item", "kind", "timestamp"])
    if len(events) < n_events:
        raise RuntimeError(f"drew {len(events)} events, fewer than {n_events}; raise OVERDRAW")
    kept = events.sort_values(["session_rank", "timestamp", "kind"]).iloc[:n_events]
    return kept.drop(columns="session_rank").sort_values(
        ["user", "timestamp", "kind", "item"], ignore_index=True
    )


def _session_users(
    rng: np.random.Generator, activity: np.ndarray, active: np.ndarray, n_sessions: int
) -> np.ndarray:
    """Every active user gets a session first; the rest go by heavy-tailed activity."""
    first = rng.permutation(active)[:n_sessions]
    weights = activity[active] / activity[active].sum()
    rest = active[rng.choice(active.size, size=n_sessions - first.size, p=weights)]
    return np.concatenate([first, rest])


def _walk_sessions(
    rng: np.random.Generator,
    catalog: Catalog,
    group: np.ndarray,
    length: np.ndarray,
    first_view: np.ndarray,
) -> np.ndarray:
    """Item of every view: position k of all sessions at once, k = 0, 1, ..."""
    item = np.empty(int(length.sum()), dtype=np.int64)
    item[first_view] = _popular_in_group(rng, catalog, group)
    for position in range(1, int(length.max(initial=0))):
        ongoing = length > position
        at = first_view[ongoing] + position
        session_group = group[ongoing]
        size = catalog.group_size[session_group]
        # Of two random neighbours the more popular one wins, keeping popularity heavy-tailed.
        step = rng.choice(NEIGHBOUR_STEPS, size=(2, at.size))
        neighbour_position = (catalog.position_in_group[item[at - 1]] + step) % size
        pair = catalog.group_items[catalog.group_start[session_group] + neighbour_position]
        more_popular = catalog.popularity[pair[1]] > catalog.popularity[pair[0]]
        neighbour = np.where(more_popular, pair[1], pair[0])
        popular = _popular_in_group(rng, catalog, session_group)
        item[at] = np.where(rng.random(at.size) < P_NEIGHBOUR, neighbour, popular)
    return item


def _popular_in_group(rng: np.random.Generator, catalog: Catalog, group: np.ndarray) -> np.ndarray:
    """One item per entry of ``group``, drawn with probability proportional to popularity."""
    cumulative = catalog.group_cum_weight
    start = catalog.group_start[group]
    last = start + catalog.group_size[group] - 1
    before = np.where(start > 0, cumulative[np.maximum(start - 1, 0)], 0.0)
    target = before + rng.random(group.size) * (cumulative[last] - before)
    position = np.clip(np.searchsorted(cumulative, target, side="right"), start, last)
    return catalog.group_items[position]


def _typed_columns(frame: pd.DataFrame, types: dict[str, str]) -> dict[str, np.ndarray]:
    return {f"{name}:{types.get(str(name), 'token')}": frame[name].to_numpy() for name in frame}


def _write_atomic(path: Path, columns: dict[str, np.ndarray]) -> None:
    """Tab-separated with a ``name:type`` header; values never need quoting (no tabs)."""
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    with path.open("wb") as handle:
        handle.write(("\t".join(columns) + "\n").encode())
        options = pa_csv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
        pa_csv.write_csv(table, handle, options)
