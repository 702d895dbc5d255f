"""What the request path hands the monitoring: one O(1) call per answer.

``AnswerMonitor.answered`` queues the answer for the online quality counts and offers it to a
bounded reservoir (Vitter's algorithm R): a uniform sample of the answers since the drift job
last took it, however many there were, at the cost of one random draw per answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from app.monitoring.drift import SampledAnswer
from app.monitoring.quality import AnswerLabels, QualityTracker

RESERVOIR_SIZE = 2_000


class AnswerReservoir:
    """A uniform sample of at most ``capacity`` answers offered since the last ``take``."""

    def __init__(self, capacity: int = RESERVOIR_SIZE, seed: int | None = None) -> None:
        self._capacity = capacity
        self._sample: list[SampledAnswer] = []
        self._seen = 0
        self._random = random.Random(seed)

    def offer(self, answer: SampledAnswer) -> None:
        self._seen += 1
        if len(self._sample) < self._capacity:
            self._sample.append(answer)
            return
        slot = self._random.randrange(self._seen)
        if slot < self._capacity:
            self._sample[slot] = answer

    def take(self) -> list[SampledAnswer]:
        """The sample, emptied for the next period."""
        sample, self._sample, self._seen = self._sample, [], 0
        return sample


class AnswerMonitor:
    """The online quality tracker (None: not counted) and the drift job's answer sample."""

    def __init__(self, quality: QualityTracker | None, reservoir: AnswerReservoir) -> None:
        self.quality = quality
        self.reservoir = reservoir

    def answered(
        self,
        recommendation_id: str,
        labels: AnswerLabels,
        item_ids: Sequence[str],
        sampled: SampledAnswer,
    ) -> None:
        if self.quality is not None:
            self.quality.offer(recommendation_id, labels, item_ids)
        self.reservoir.offer(sampled)
