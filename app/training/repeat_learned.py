"""The learned repeat scorer: a gradient-boosted classifier of "bought again soon".

Trained the way it is used, one window earlier: the newest share of each user's purchases
(whole baskets, the warm split's rule) are the labels, what came before gives the features
(``repeat_features``), and a pair is positive when the user bought the item again within the
labelled window. Applied to all purchases, its probabilities rank each user's rebuys. Plain
frequency with recency is the anchor next-basket studies found hard to beat; this learns how
recency, cycles and the basket count trade off on the data at hand, and validation decides
whether it pays (``repeat_tuning``).
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

from app.training.repeat import (
    PairStats,
    Purchases,
    held_out,
    normalised_by_user,
    pair_keys,
    pair_stats,
)
from app.training.repeat_features import pair_features

# Fixed, not tuned: early stopping on a tenth of the pairs picks the number of trees.
_MAX_TREES = 200
_LEARNING_RATE = 0.1
_MIN_PAIRS_PER_LEAF = 50
# Fewer rebuys (or non-rebuys) than this in the window leave nothing to learn from: the early
# stopping split alone needs a few of each.
MIN_PAIRS_PER_CLASS = 20
_SEED = 0
# Beyond this many (user, item) pairs the fit learns from a seeded sample of whole users: the
# trees gain little from more rows, and fitting time grows with them.
MAX_TRAINING_PAIRS = 1_000_000


def fit_repurchase_classifier(
    purchases: Purchases, share: float
) -> HistGradientBoostingClassifier | None:
    """Fit on the purchases' own last window (``share`` of each user's); ``None`` when that
    window holds too few rebuys, or too few pairs not rebought, to learn from."""
    held = held_out(purchases, share)
    history = purchases.take(~held)
    stats = pair_stats(history)
    keys = stats.user * history.n_items + stats.item
    rows = training_rows(stats.user, MAX_TRAINING_PAIRS)
    bought_again = np.isin(keys[rows], pair_keys(purchases.take(held)))
    rebought = int(bought_again.sum())
    if min(rebought, len(rows) - rebought) < MIN_PAIRS_PER_CLASS:
        return None
    classifier = HistGradientBoostingClassifier(
        max_iter=_MAX_TREES,
        learning_rate=_LEARNING_RATE,
        min_samples_leaf=_MIN_PAIRS_PER_LEAF,
        early_stopping=True,
        random_state=_SEED,
    )
    return classifier.fit(pair_features(history, stats)[rows], bought_again)


def training_rows(pair_user: np.ndarray, max_pairs: int) -> np.ndarray:
    """Positions of the pairs to learn from: all, or those of a seeded sample of users whose
    pairs add up to at most ``max_pairs`` (``pair_user`` sorted, as pairs come)."""
    if len(pair_user) <= max_pairs:
        return np.arange(len(pair_user))
    users, counts = np.unique(pair_user, return_counts=True)
    order = np.random.default_rng(_SEED).permutation(len(users))
    taken = order[np.cumsum(counts[order]) <= max_pairs]
    return np.flatnonzero(np.isin(pair_user, users[taken]))


def learned_pair_scores(
    classifier: HistGradientBoostingClassifier, purchases: Purchases, stats: PairStats
) -> np.ndarray:
    """Each pair's probability of a rebuy, normalised by its user's best (``(0, 1]``)."""
    if not len(stats.user):
        return np.zeros(0)
    probability = classifier.predict_proba(pair_features(purchases, stats))[:, 1]
    # A floor keeps every bought item a candidate, ranked below the likelier ones.
    return normalised_by_user(stats, np.maximum(probability, 1e-9))
