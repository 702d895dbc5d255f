"""memoised: values remembered within a byte budget, least recently used out first."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.infra.memo import memoised


def counting(sizes: dict[str, int]) -> tuple[Callable[[str], str], list[str]]:
    """A memoised upper-casing whose entries weigh ``sizes[key]``, and the keys it computed."""
    computed: list[str] = []

    def upper(key: str) -> tuple[str, int]:
        computed.append(key)
        return key.upper(), sizes[key]

    return memoised(upper, lambda key: key, max_bytes=100), computed


def test_keeps_entries_up_to_the_byte_budget_dropping_the_least_recently_used() -> None:
    upper, computed = counting({"a": 40, "b": 40, "c": 40})
    upper("a")
    upper("b")
    upper("a")  # remembered; now "b" is the least recently used

    upper("c")  # 120 bytes: "b" goes
    assert [upper("a"), upper("c")] == ["A", "C"]
    assert computed == ["a", "b", "c"]
    assert upper("b") == "B"
    assert computed == ["a", "b", "c", "b"]


def test_an_entry_larger_than_the_budget_is_answered_but_never_kept_and_evicts_no_other() -> None:
    upper, computed = counting({"a": 60, "huge": 101})
    upper("a")

    assert [upper("huge"), upper("huge")] == ["HUGE", "HUGE"]
    assert upper("a") == "A"
    assert computed == ["a", "huge", "huge"]


def test_a_budget_of_zero_remembers_nothing() -> None:
    computed: list[str] = []

    def upper(key: str) -> tuple[str, int]:
        computed.append(key)
        return key.upper(), 1

    plain = memoised(upper, lambda key: key, max_bytes=0)

    assert [plain("a"), plain("a")] == ["A", "A"]
    assert computed == ["a", "a"]


def test_threads_sharing_it_get_every_value_right() -> None:
    keys = [f"k{i % 50}" for i in range(2_000)]
    upper, computed = counting(dict.fromkeys(keys, 10))  # ten entries fit

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(upper, keys))

    assert answers == [key.upper() for key in keys]
    assert set(computed) == set(keys)
    assert upper(keys[-1]) == keys[-1].upper()
