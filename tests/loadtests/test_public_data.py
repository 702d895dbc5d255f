"""The public-data converters: each layout becomes atomic files the product ingests, with
baskets as one timestamp and the fields each dataset carries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from app.data.ingest import ingest
from loadtests.public_data import instacart, main, movielens_dat, tafeng


def _atomic(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str)


def _ingests_whole(dataset: Path, tmp_path: Path) -> None:
    """The product ingests every row the converter wrote."""
    report = ingest(dataset, tmp_path / "ingested" / dataset.name)
    for table in report.tables.values():
        assert table.quarantined == 0
        assert table.accepted == table.rows_read > 0


def test_movielens_dat_layout_becomes_recbole_ml_1m(tmp_path: Path) -> None:
    (tmp_path / "ratings.dat").write_text("1::10::5::978300760\n1::20::3::978300760\n2::10::4::5\n")
    (tmp_path / "movies.dat").write_bytes(
        "10::Café (1995)::Comedy|Drama\n20::Untitled::Horror\n".encode("latin-1")
    )
    (tmp_path / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    target = movielens_dat(
        tmp_path / "ratings.dat", tmp_path / "movies.dat", tmp_path / "users.dat", tmp_path, "ml"
    )
    items = _atomic(target / "ml.item").fillna("")
    assert items.to_dict("records")[0] == {
        "item_id:token": "10",
        "movie_title:token_seq": "Café",
        "release_year:token": "1995",
        "genre:token_seq": "Comedy Drama",
    }
    assert items["release_year:token"].tolist() == ["1995", ""]
    users = _atomic(target / "ml.user")
    assert list(users.columns) == [
        "user_id:token",
        "age:token",
        "gender:token",
        "occupation:token",
        "zip_code:token",
    ]
    assert users.iloc[1].tolist() == ["2", "56", "M", "16", "70072"]
    _ingests_whole(target, tmp_path)


def test_tafeng_lines_of_one_day_are_one_basket_at_taiwan_midnight(tmp_path: Path) -> None:
    csv = tmp_path / "ta_feng.csv"
    csv.write_text(
        '\ufeff"TRANSACTION_DT","CUSTOMER_ID","AGE_GROUP","PIN_CODE","PRODUCT_SUBCLASS",'
        '"PRODUCT_ID","AMOUNT","ASSET","SALES_PRICE"\n'
        '"11/1/2000","0011","45-49","115","110411","471","2","24","30"\n'
        '"11/1/2000","0011","45-49","115","120107","472","1","48","46"\n'
        '"11/3/2000","0011","45-49","115","110411","471","1","12","15"\n',
        encoding="utf-8",
    )
    target = tafeng(csv, tmp_path)
    inter = _atomic(target / "tafeng.inter")
    # 2000-11-01 00:00 at UTC+8 is 2000-10-31 16:00 UTC.
    assert inter["timestamp:float"].tolist()[:2] == ["973008000", "973008000"]
    assert inter["basket_id:token"].tolist() == ["0011_20001101"] * 2 + ["0011_20001103"]
    assert inter["user_id:token"].iloc[0] == "0011"  # leading zeros kept
    assert inter["price:float"].astype(float).tolist() == [15.0, 46.0, 15.0]  # per unit
    users = _atomic(target / "tafeng.user")
    assert users.iloc[0].tolist() == ["0011", "45-49", "115"]
    _ingests_whole(target, tmp_path)


def test_instacart_clock_runs_forward_per_user(tmp_path: Path) -> None:
    orders = pd.DataFrame(
        {
            "order_id": [1, 2, 3, 4],
            "user_id": [7, 7, 7, 9],
            "order_number": [1, 2, 3, 1],
            "order_hour_of_day": [10, 8, 20, 0],
            "days_since_prior_order": [None, 0.0, 2.0, None],
        }
    )
    orders.to_csv(tmp_path / "orders.csv", index=False)
    lines = pd.DataFrame(
        {"order_id": [1, 1, 2, 3, 4], "product_id": [5, 6, 5, 5, 6], "add_to_cart_order": 1}
    )
    lines.to_csv(tmp_path / "lines.csv", index=False)
    pd.DataFrame({"product_id": [5, 6], "aisle_id": 1, "department_id": 2}).to_csv(
        tmp_path / "products.csv", index=False
    )
    pd.DataFrame({"aisle_id": [1], "aisle": ["milk"]}).to_csv(tmp_path / "aisles.csv", index=False)
    pd.DataFrame({"department_id": [2], "department": ["dairy"]}).to_csv(
        tmp_path / "departments.csv", index=False
    )
    target = instacart(
        tmp_path / "orders.csv",
        tmp_path / "lines.csv",
        tmp_path / "products.csv",
        tmp_path / "aisles.csv",
        tmp_path / "departments.csv",
        tmp_path,
        max_users=1,
    )
    inter = _atomic(target / "instacart.inter")
    stamps = inter["timestamp:float"].astype(int).tolist()
    start = 1_500_000_000
    # Order 2 came the same day at an earlier hour: a minute after order 1, not before it.
    assert stamps == [start + 36_000, start + 36_000, start + 36_060, start + 2 * 86_400 + 72_000]
    assert set(inter["user_id:token"]) == {"7"}  # --max-users keeps the smallest ids
    items = _atomic(target / "instacart.item")
    assert items.iloc[0].tolist() == ["5", "dairy", "milk"]
    _ingests_whole(target, tmp_path)


def test_a_file_of_another_layout_is_refused_with_the_dataset_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "orders.csv"
    wrong.write_text("user,item\n1,2\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["tafeng", "--transactions", str(wrong), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "tafeng: cannot convert" in message
    assert "TRANSACTION_DT" in message
    assert not (tmp_path / "out" / "tafeng").exists()  # nothing half-written


def test_a_missing_file_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.dat"
    args = ["--ratings", str(missing), "--movies", str(missing), "--users", str(missing)]
    with pytest.raises(SystemExit):
        main(["movielens-dat", *args, "--out", str(tmp_path)])
    assert "nowhere.dat" in capsys.readouterr().err
