from app.serving.recommend.fallback import popular_items


def test_popular_items_skip_excluded_and_keep_rank_order() -> None:
    items = popular_items(["a", "b", "c", "d"], 2, {"a", "c"})
    assert [i.item_id for i in items] == ["b", "d"]
    assert items[0].score > items[1].score


def test_popular_items_returns_what_is_left_when_short() -> None:
    assert [i.item_id for i in popular_items(["a", "b"], 5, {"b"})] == ["a"]
