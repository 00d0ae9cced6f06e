"""The Session object: read and change tracking, and the pending action."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from sessionware import Session, SessionError


def loaded(**data: Any) -> Session:
    session = Session(data)
    assert not session.accessed
    return session


READS: list[Callable[[Session], object]] = [
    lambda s: s["a"],
    lambda s: s.get("a"),
    lambda s: s.get("missing", 1),
    lambda s: "a" in s,
    lambda s: len(s),
    lambda s: bool(s),
    lambda s: list(s),
    lambda s: list(s.keys()),
    lambda s: list(s.values()),
    lambda s: list(s.items()),
    lambda s: s.copy(),
    lambda s: dict(s),
    lambda s: s == {"a": 1},
    lambda s: s != {"a": 1},
    lambda s: repr(s),
    lambda s: json.dumps(s),
    lambda s: {**s},
    lambda s: s | {"b": 2},
    lambda s: list(reversed(s)),
]


@pytest.mark.parametrize("read", READS)
def test_every_way_of_reading_marks_the_session_accessed(read: Callable[[Session], object]) -> None:
    session = loaded(a=1)
    read(session)
    assert session.accessed


WRITES: list[Callable[[Session], object]] = [
    lambda s: s.__setitem__("b", 2),
    lambda s: s.__delitem__("a"),
    lambda s: s.update(b=2),
    lambda s: s.setdefault("b", 2),
    lambda s: s.pop("a"),
    lambda s: s.popitem(),
    lambda s: s.clear(),
    lambda s: s.__ior__({"b": 2}),
]


@pytest.mark.parametrize("write", WRITES)
def test_every_way_of_writing_marks_the_session_accessed_and_dirty(
    write: Callable[[Session], object],
) -> None:
    session = loaded(a=1)
    write(session)
    assert session.accessed
    assert session._dirty


def test_reading_a_scalar_does_not_mark_the_session_for_comparison() -> None:
    session = loaded(name="alice", n=3)
    assert session["name"] == "alice"
    assert session.get("n") == 3
    assert not session._dirty


@pytest.mark.parametrize("value", [[1], {"x": 1}])
def test_reading_a_container_marks_the_session_for_comparison(value: Any) -> None:
    session = loaded(v=value)
    session["v"]
    assert session._dirty
    session = loaded(v=value)
    session.get("v")
    assert session._dirty


def test_the_session_is_a_dict() -> None:
    session = loaded(a=1)
    assert isinstance(session, dict)
    assert session == {"a": 1}
    assert json.loads(json.dumps(session)) == {"a": 1}


def test_no_action_is_pending_by_default() -> None:
    assert Session().action is None


def test_renew_drop_and_ignore_set_the_pending_action() -> None:
    session = Session()
    session.renew()
    assert session.action == "renew"
    session.ignore()
    assert session.action == "ignore"
    session.renew()
    assert session.action == "renew"


def test_later_writes_never_undo_an_action() -> None:
    for act in ("renew", "ignore", "drop"):
        session = loaded(a=1)
        getattr(session, act)()
        session["b"] = 2
        session.clear()
        assert session.action == act


def test_drop_is_final_and_empties_the_session() -> None:
    session = loaded(a=1)
    session.drop()
    assert dict(session) == {}
    session.renew()
    session.ignore()
    assert session.action == "drop"


def test_a_read_only_session_refuses_writes_and_actions_with_a_clear_error() -> None:
    session = loaded(a=1)
    session._read_only = True
    assert session["a"] == 1
    with pytest.raises(SessionError, match="read-only"):
        session["b"] = 2
    with pytest.raises(SessionError, match="read-only"):
        session.renew()
    with pytest.raises(SessionError, match="read-only"):
        session.drop()
    assert dict(session) == {"a": 1}


def test_a_session_is_unhashable_like_a_dict() -> None:
    with pytest.raises(TypeError):
        hash(Session())
