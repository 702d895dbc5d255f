"""A MovieLens-100k-shaped dataset in RecBole atomic format, written by the test itself.

Same layout and quirks as ml-100k: 1-5 ratings (``rate`` events, no purchases, so the RFM
monetary axis has no spread), genres as a ``token_seq`` class field, user demographics,
ratings entered in bursts that share a timestamp (steps of several items), a long-tailed
popularity and a few heavy raters.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GENRES = ("Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi", "Thriller", "Children")
OCCUPATIONS = ("student", "engineer", "writer", "educator", "other")
START = 874_724_710  # 1997-09-20, where ml-100k starts
SPAN_SECONDS = 215 * 86_400


def write_movielens_like(out_dir: Path, n_users: int, n_items: int, seed: int) -> Path:
    """Write ``out_dir/mlk/mlk.{inter,user,item}``; return the dataset directory."""
    rng = np.random.default_rng(seed)
    directory = out_dir / "mlk"
    directory.mkdir(parents=True)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity /= popularity.sum()
    lines = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for user in range(1, n_users + 1):
        count = int(min(n_items // 2, 20 + rng.pareto(1.5) * 25))
        movies = rng.choice(n_items, size=count, replace=False, p=popularity) + 1
        clock = START + int(rng.integers(SPAN_SECONDS))
        for position, movie in enumerate(movies):
            if position % 4 == 0:  # a new burst: the next ratings share its timestamp
                clock += int(rng.integers(1, 3 * 86_400))
            lines.append(f"{user}\t{movie}\t{int(rng.integers(1, 6))}\t{clock}")
    (directory / "mlk.inter").write_text("\n".join(lines) + "\n")
    users = ["user_id:token\tage:float\tgender:token\toccupation:token\tzip_code:token"]
    users += [
        f"{u}\t{int(rng.integers(7, 74))}\t{'MF'[int(rng.integers(2))]}\t"
        f"{OCCUPATIONS[int(rng.integers(len(OCCUPATIONS)))]}\t{int(rng.integers(10000, 99999))}"
        for u in range(1, n_users + 1)
    ]
    (directory / "mlk.user").write_text("\n".join(users) + "\n")
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    for movie in range(1, n_items + 1):
        genres = rng.choice(GENRES, size=int(rng.integers(1, 4)), replace=False)
        items.append(f"{movie}\tMovie {movie}\t{int(rng.integers(1930, 1998))}\t{' '.join(genres)}")
    (directory / "mlk.item").write_text("\n".join(items) + "\n")
    return directory
