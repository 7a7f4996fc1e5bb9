"""Backoff: doubling from 1 s to 30 s, +-20 % jitter, reset after a stable connection."""

from __future__ import annotations

import pytest

from desktop_relay.relay.outputs.backoff import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_doubles_to_the_cap_without_jitter() -> None:
    backoff = Backoff(rng=lambda: 0.5)
    assert [backoff.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]


@pytest.mark.parametrize(("r", "factor"), [(0.0, 0.8), (1.0, 1.2), (0.25, 0.9)])
def test_jitter_stays_within_twenty_percent(r: float, factor: float) -> None:
    backoff = Backoff(rng=lambda: r)
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == pytest.approx([b * factor for b in (1, 2, 4, 8, 16, 30, 30)])


def test_jittered_delays_still_grow_until_the_cap() -> None:
    values = iter([1.0, 0.0] * 10)  # worst case: high then low
    backoff = Backoff(rng=lambda: next(values))
    delays = [backoff.next_delay() for _ in range(5)]
    assert delays == sorted(delays) and delays[0] == pytest.approx(1.2)


def test_a_stable_connection_resets_a_short_one_does_not() -> None:
    clock = Clock()
    backoff = Backoff(rng=lambda: 0.5, stable_after=10, clock=clock)
    assert [backoff.next_delay() for _ in range(3)] == [1, 2, 4]
    backoff.connected()
    clock.now += 9.9
    assert backoff.next_delay() == 8  # up less than 10 s: a flapping target keeps backing off
    backoff.connected()
    clock.now += 10
    assert backoff.next_delay() == 1
    assert backoff.next_delay() == 2
    backoff.reset()
    assert backoff.next_delay() == 1


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Backoff(initial=0)
    with pytest.raises(ValueError):
        Backoff(initial=5, maximum=1)
    with pytest.raises(ValueError):
        Backoff(jitter=1.5)
