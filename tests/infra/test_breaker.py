import pytest

from app.infra.breaker import BreakerState, CircuitBreaker

RETRY_AFTER = 2.0


class ManualClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(RETRY_AFTER, clock=clock)


def test_closed_breaker_allows_every_call(breaker: CircuitBreaker) -> None:
    assert all(breaker.allow() for _ in range(5))
    assert breaker.state is BreakerState.CLOSED


def test_failure_refuses_calls_until_the_delay_has_passed(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    clock.now += RETRY_AFTER - 0.01
    assert not breaker.allow()


def test_after_the_delay_exactly_one_trial_is_allowed(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    breaker.record_failure()
    clock.now += RETRY_AFTER
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # a concurrent caller waits for the trial's outcome


def test_successful_trial_closes_the_circuit(breaker: CircuitBreaker, clock: ManualClock) -> None:
    breaker.record_failure()
    clock.now += RETRY_AFTER
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    assert breaker.allow()


def test_failed_trial_reopens_for_a_full_delay_from_the_failure(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    breaker.record_failure()
    clock.now += RETRY_AFTER
    assert breaker.allow()
    clock.now += 0.5  # the trial took a while to fail
    breaker.record_failure()
    clock.now += RETRY_AFTER - 0.01
    assert not breaker.allow()
    clock.now += 0.01
    assert breaker.allow()


def test_trial_that_never_reports_does_not_wedge_the_breaker(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    breaker.record_failure()
    clock.now += RETRY_AFTER
    assert breaker.allow()  # this trial's task is cancelled and never records an outcome
    clock.now += RETRY_AFTER - 0.01
    assert not breaker.allow()
    clock.now += 0.01
    assert breaker.allow()


def test_success_of_any_call_closes_an_open_circuit(breaker: CircuitBreaker) -> None:
    breaker.record_failure()
    breaker.record_success()  # e.g. a readiness ping got an answer
    assert breaker.allow()


@pytest.mark.parametrize("delay", [0.0, -1.0])
def test_retry_delay_must_be_positive(delay: float) -> None:
    with pytest.raises(ValueError, match="retry_after_seconds"):
        CircuitBreaker(delay)
