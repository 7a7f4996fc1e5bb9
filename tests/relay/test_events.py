"""One name per event: the observer's method, the string event and the window's signal carry
the same word; the original server's names are aliases with the original's arguments."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pytest

from desktop_relay.relay import RelayObserver
from desktop_relay.relay.events import ALIASES, EVENTS
from desktop_relay.relay.observer import Observable


def test_every_observer_method_is_an_event_name_and_the_other_way_round() -> None:
    methods = {
        name
        for name, _ in inspect.getmembers(RelayObserver, inspect.isfunction)
        if not name.startswith("_")
    }
    assert methods == EVENTS
    assert all(target in EVENTS for target, _ in ALIASES.values())


def test_an_event_reaches_observers_its_listeners_and_its_alias_with_the_originals_args() -> None:
    relay = Observable()
    heard: list[tuple[str, tuple[Any, ...]]] = []

    class Observer:
        def session_ended(self, status: Any) -> None:
            heard.append(("observer", (status,)))

    def by_name(*args: Any) -> None:
        heard.append(("session_ended", args))

    def by_alias(*args: Any) -> None:
        heard.append(("destroyed", args))

    relay.add_observer(Observer())  # type: ignore[arg-type]
    relay.add_listener("session_ended", by_name)
    relay.add_listener("destroyed", by_alias)
    assert relay.has_listeners("destroyed") and relay.has_listeners("session_ended")
    status = SimpleNamespace(uuid="s-1")
    relay._notify("session_ended", status)
    assert heard == [
        ("observer", (status,)),
        ("session_ended", (status,)),
        ("destroyed", ("s-1", status)),  # the original passed the id first
    ]
    relay.remove_listener("destroyed", by_alias)
    relay.remove_listener("session_ended", by_name)
    heard.clear()
    relay._notify("session_ended", status)
    assert heard == [("observer", (status,))]
    assert not relay.has_listeners("destroyed")


@pytest.mark.parametrize(("alias", "name"), [(a, n) for a, (n, _) in ALIASES.items()])
def test_the_originals_names_are_aliases(alias: str, name: str) -> None:
    relay = Observable()
    got: list[tuple[Any, ...]] = []
    relay.add_listener(alias, lambda *args: got.append(args))
    status = SimpleNamespace(uuid="s-2")
    args: tuple[Any, ...] = (status,) if name.startswith("session_") and name in {
        "session_opened", "session_waiting", "session_resumed", "session_ended"} else ("a", "b")
    relay._notify(name, *args)
    assert len(got) == 1


def test_an_unknown_event_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="ffmpegOutput"):
        Observable().add_listener("ffmpeg_line", print)
