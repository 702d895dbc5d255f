"""User segments: K-Means on recency / frequency / monetary (RFM) vectors.

RFM comes from the offline ``user_behaviour`` table. Recency is measured from the latest
interaction in the data rather than from the wall clock, so a historical dataset (MovieLens ends
in 1998) still separates recent from lapsed users. Each axis is ``log1p``-compressed (counts and
spend are heavy-tailed) and standardised; an axis with no spread (no purchases at all) is left
out rather than divided by zero.

Segments are named ``s1`` .. ``sk`` by decreasing engagement (frequency + monetary - recency of
the centroid, in standard units), so ``s1`` is always the most engaged group whatever order
K-Means found them in. Users with attributes but no interactions are ``new``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from app.features.schema import NEW_USER_SEGMENT, USER_JOIN_KEY

SECONDS_PER_DAY = 86_400.0
CLUSTER_CHOICES = range(2, 9)
# Silhouette is quadratic in the number of points: choose k on a sample.
SILHOUETTE_SAMPLE = 3000
RFM_COLUMNS = ("recency_days", "frequency", "monetary")
# (points, k, seed) -> one cluster label per point: the K-Means of an engine.
KMeansFit = Callable[[np.ndarray, int, int], np.ndarray]


@dataclass(frozen=True)
class SegmentSummary:
    segment: str
    users: int
    median_recency_days: float
    median_frequency: float
    median_monetary: float


@dataclass(frozen=True)
class SegmentsReport:
    n_clusters: int
    silhouette: float | None
    segments: tuple[SegmentSummary, ...]
    new_users: int

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def format(self) -> str:
        quality = "" if self.silhouette is None else f", silhouette {self.silhouette:.3f}"
        lines = [f"segments: k={self.n_clusters}{quality}; {self.new_users} new users"]
        lines += [
            f"  {s.segment}: {s.users} users, recency {s.median_recency_days:.0f} d, "
            f"frequency {s.median_frequency:.0f}, monetary {s.median_monetary:.2f}"
            for s in self.segments
        ]
        return "\n".join(lines)


def rfm_table(behaviour: pd.DataFrame) -> pd.DataFrame:
    """Per user (index ``user_id``): recency in days from the latest interaction in the table,
    frequency (interactions) and monetary (purchase value)."""
    last = behaviour["last_event_at"].to_numpy(dtype=np.float64)
    reference = float(last.max()) if len(last) else 0.0
    return pd.DataFrame(
        {
            "recency_days": (reference - last) / SECONDS_PER_DAY,
            "frequency": behaviour["interaction_count"].to_numpy(dtype=np.float64),
            "monetary": behaviour["monetary"].fillna(0.0).to_numpy(dtype=np.float64),
        },
        index=pd.Index(behaviour[USER_JOIN_KEY].astype(str), name=USER_JOIN_KEY),
    )


def assign_segments(
    behaviour: pd.DataFrame,
    attribute_users: Sequence[str] = (),
    *,
    n_clusters: int | None = None,
    seed: int = 0,
    kmeans: KMeansFit | None = None,
) -> tuple[pd.DataFrame, SegmentsReport]:
    """Cluster ``behaviour`` users on RFM; ``attribute_users`` without behaviour are ``new``.

    ``n_clusters`` None picks k in 2..8 by silhouette (measured here on a sample, whichever
    engine clustered). ``kmeans`` fits the clusters (default: scikit-learn's, in this
    process). Returns (``user_id``, ``segment``) rows and a report."""
    rfm = rfm_table(behaviour)
    labels, silhouette = _cluster(_standardised(rfm), n_clusters, seed, kmeans or local_kmeans)
    names = _names_by_engagement(_standardised(rfm), labels)
    segment = pd.Series(names[labels] if len(labels) else [], index=rfm.index, dtype=object)
    new_users = sorted(set(map(str, attribute_users)) - set(rfm.index))
    frame = pd.DataFrame(
        {
            USER_JOIN_KEY: [*segment.index, *new_users],
            "segment": [*segment.tolist(), *([NEW_USER_SEGMENT] * len(new_users))],
        }
    )
    summaries = tuple(
        SegmentSummary(
            segment=name,
            users=int((segment == name).sum()),
            median_recency_days=float(rfm.loc[segment == name, "recency_days"].median()),
            median_frequency=float(rfm.loc[segment == name, "frequency"].median()),
            median_monetary=float(rfm.loc[segment == name, "monetary"].median()),
        )
        for name in sorted(set(segment.tolist()), key=lambda s: int(s[1:]))
    )
    report = SegmentsReport(len(summaries), silhouette, summaries, len(new_users))
    return frame, report


def _standardised(rfm: pd.DataFrame) -> np.ndarray:
    """log1p then z-score each RFM axis; axes without spread become zeros."""
    values = np.log1p(np.clip(rfm[list(RFM_COLUMNS)].to_numpy(), 0.0, None))
    spread = values.std(axis=0)
    centred = values - values.mean(axis=0)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def local_kmeans(points: np.ndarray, k: int, seed: int) -> np.ndarray:
    """scikit-learn's K-Means (k-means++ starts, the best of 4 by inertia)."""
    return np.asarray(KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(points))


def _cluster(
    points: np.ndarray, n_clusters: int | None, seed: int, kmeans: KMeansFit
) -> tuple[np.ndarray, float | None]:
    """K-Means labels and the silhouette of the chosen k (None when it cannot be measured:
    it needs more distinct points than clusters)."""
    distinct = len(np.unique(points, axis=0)) if len(points) else 0
    if distinct < 2:
        return np.zeros(len(points), dtype=np.int64), None
    if n_clusters is not None:
        choices = [min(n_clusters, distinct)]
    else:
        choices = [k for k in CLUSTER_CHOICES if k < distinct] or [distinct]
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(points), size=min(len(points), SILHOUETTE_SAMPLE), replace=False)
    best: tuple[float | None, np.ndarray] | None = None
    for k in choices:
        labels = kmeans(points, k, seed)
        quality = _silhouette(points[sample], labels[sample])
        if best is None or (quality is not None and (best[0] is None or quality > best[0])):
            best = (quality, labels)
    assert best is not None
    return best[1].astype(np.int64), best[0]


def _silhouette(points: np.ndarray, labels: np.ndarray) -> float | None:
    if not 1 < len(np.unique(labels)) < len(np.unique(points, axis=0)):
        return None
    return float(silhouette_score(points, labels))


def _names_by_engagement(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``s1`` for the cluster with the highest frequency + monetary - recency, and so on."""
    if not len(labels):
        return np.array([], dtype=object)
    n = int(labels.max()) + 1
    engagement = np.array(
        [
            points[labels == c][:, 1].mean()
            + points[labels == c][:, 2].mean()
            - points[labels == c][:, 0].mean()
            for c in range(n)
        ]
    )
    names = np.empty(n, dtype=object)
    for rank, cluster in enumerate(np.argsort(-engagement, kind="stable"), start=1):
        names[cluster] = f"s{rank}"
    return names
