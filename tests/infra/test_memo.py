"""SizedLRU: bounded by the sizes its caller gives, least recently used out first."""

from __future__ import annotations

from app.infra.memo import SizedLRU


def test_keeps_entries_up_to_the_byte_budget_dropping_the_least_recently_used() -> None:
    memo: SizedLRU[str, int] = SizedLRU(max_bytes=100)
    memo.put("a", 1, size=40)
    memo.put("b", 2, size=40)
    assert memo.get("a") == 1  # now "b" is the least recently used

    memo.put("c", 3, size=40)

    assert memo.get("b") is None
    assert (memo.get("a"), memo.get("c")) == (1, 3)
    assert memo.size_bytes == 80
    assert len(memo) == 2


def test_an_entry_larger_than_the_budget_is_not_kept_and_evicts_no_other() -> None:
    memo: SizedLRU[str, int] = SizedLRU(max_bytes=100)
    memo.put("a", 1, size=60)

    memo.put("huge", 2, size=101)

    assert memo.get("huge") is None
    assert memo.get("a") == 1
    memo.put("a", 3, size=101)  # a key put again too large: its old value goes too
    assert memo.get("a") is None
    assert memo.size_bytes == 0


def test_putting_a_key_again_replaces_its_value_and_size() -> None:
    memo: SizedLRU[str, int] = SizedLRU(max_bytes=100)
    memo.put("a", 1, size=90)
    memo.put("a", 2, size=10)
    memo.put("b", 3, size=90)

    assert (memo.get("a"), memo.get("b")) == (2, 3)
    assert memo.size_bytes == 100
