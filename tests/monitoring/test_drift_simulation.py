"""Acceptance of the drift detection on a synthetic population: with a mid-run shift of
preferences the alert condition (a feature's PSI at or above ``ALERT_PSI``) holds within a
bounded number of events; without one it stays quiet, and the false-alarm rate over seeded runs
is measured. The drift job's computation (``measure``) runs on sliding windows as the
background job would see them, checked every ``CHECK_EVERY`` events."""

from __future__ import annotations

from collections import deque

from app.monitoring.drift import DEFAULT_WINDOW, SampledAnswer, WindowEvent
from app.monitoring.drift_job import ALERT_PSI, ANSWER_WINDOW, measure
from tests.monitoring.population import Population, training_snapshot

TRAINING_EVENTS = 30_000
WARM_UP = DEFAULT_WINDOW  # live events before the shift: a full window of unshifted traffic
AFTER_SHIFT = 5_000
CHECK_EVERY = 500
DETECTION_BOUND = 2_000  # events after the shift by which the alert condition must hold
SEEDS = range(20)


def alarms(population: Population, shift_at: int | None, total: int) -> list[tuple[int, str]]:
    """(events since the start of live traffic, feature) of every check at or above the alert
    threshold."""
    snapshot = training_snapshot(population, TRAINING_EVENTS)
    events: deque[WindowEvent] = deque(maxlen=snapshot.reference.window)
    answers: deque[SampledAnswer] = deque(maxlen=ANSWER_WINDOW)
    fired = []
    for seen in range(CHECK_EVERY, total + 1, CHECK_EVERY):
        if shift_at is not None and seen - CHECK_EVERY == shift_at:
            population.shift()
        batch = population.events(CHECK_EVERY)
        events.extend(batch)
        answers.extend(population.answers(batch))
        for found in measure(snapshot, events, answers):
            if found.psi is not None and found.psi >= ALERT_PSI:
                fired.append((seen, found.feature))
    return fired


def test_a_preference_shift_fires_the_alert_condition_within_the_bound() -> None:
    delays = []
    for seed in SEEDS[:5]:
        fired = alarms(Population.seeded(seed), WARM_UP, WARM_UP + AFTER_SHIFT)
        assert all(seen > WARM_UP for seen, _ in fired), (seed, fired[:3])
        first = min(seen for seen, _ in fired) - WARM_UP
        delays.append(first)
        features = {feature for _, feature in fired}
        # The shift moves what users interact with and how the model answers.
        assert {"item_category", "unknown_items", "score"} <= features, (seed, features)
    assert max(delays) <= DETECTION_BOUND, delays


def test_without_a_shift_no_seed_raises_a_false_alarm() -> None:
    false_alarms = [
        seed for seed in SEEDS if alarms(Population.seeded(seed), None, WARM_UP + AFTER_SHIFT)
    ]
    assert len(false_alarms) / len(SEEDS) == 0.0, false_alarms


if __name__ == "__main__":  # the figures docs/operations.md quotes, over every seed
    delays = [
        min(seen for seen, _ in alarms(Population.seeded(s), WARM_UP, WARM_UP + AFTER_SHIFT))
        - WARM_UP
        for s in SEEDS
    ]
    quiet = sum(not alarms(Population.seeded(s), None, WARM_UP + AFTER_SHIFT) for s in SEEDS)
    print(
        f"shift detected after {min(delays)}-{max(delays)} events (median "
        f"{sorted(delays)[len(delays) // 2]}) over {len(SEEDS)} seeds, window {DEFAULT_WINDOW}, "
        f"checked every {CHECK_EVERY}"
    )
    print(f"false alarms without a shift: {len(SEEDS) - quiet} of {len(SEEDS)} seeds")
