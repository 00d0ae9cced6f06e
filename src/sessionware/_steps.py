"""The store calls the engine asks for, and the two drivers that make them.

The engine never calls a store: where it needs one it *yields* a call
(:class:`Load`, :class:`Create`, :class:`Update`, :class:`Delete`, and for the
registry :class:`ListUser`, :class:`DeleteUser`) and is resumed with the
answer. :func:`run_sync` drives such steps against a synchronous store (WSGI,
the CLI, the test helpers), :func:`run_async` against an asynchronous one
(ASGI). One lifecycle, two ten-line drivers.

Where exactly one call is needed and what follows is pure -- loading a
session -- the step is a :class:`Then` instead of a generator: the call and
the function that finishes with its answer. It means the same and costs less
(no generator to run), which matters on the path every request takes.

An asynchronous store may offer a synchronous fast path: an ``inline``
attribute holding a store whose methods are safe to call on the event loop
(they do no I/O, or I/O that cannot wait: SQLite's loop connection) and raise
:class:`WouldBlock` instead of waiting. :func:`run_async` calls it first and
awaits the async method only when it would block, so a call that can be
answered at once costs no coroutine, no thread and no event-loop round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Mapping
from types import GeneratorType
from typing import Any, Generic, NamedTuple, TypeVar

from .errors import SessionError, StoreError, StoreUnavailable
from .typing import Change

__all__ = [
    "Call",
    "Create",
    "Delete",
    "DeleteUser",
    "ListUser",
    "Load",
    "Pending",
    "Steps",
    "Then",
    "Update",
    "WouldBlock",
    "failed",
    "run_async",
    "run_inline",
    "run_sync",
]

T = TypeVar("T")


class WouldBlock(Exception):
    """Raised by an ``inline`` store when answering would wait (a lock is held)."""


class Load(NamedTuple):
    key: str

    def apply(self, store: Any) -> Any:
        return store.load(self.key)


class Create(NamedTuple):
    key: str
    head: bytes
    fields: Mapping[str, str]
    ttl: int
    user: str | None

    def apply(self, store: Any) -> Any:
        return store.create(self.key, self.head, self.fields, self.ttl, self.user)


class Update(NamedTuple):
    key: str
    change: Change

    def apply(self, store: Any) -> Any:
        return store.update(self.key, self.change)


class Delete(NamedTuple):
    key: str

    def apply(self, store: Any) -> Any:
        return store.delete(self.key)


class ListUser(NamedTuple):
    user: str

    def apply(self, store: Any) -> Any:
        return store.user_sessions(self.user)


class DeleteUser(NamedTuple):
    user: str
    keep: str | None

    def apply(self, store: Any) -> Any:
        return store.delete_user_sessions(self.user, self.keep)


Call = Load | Create | Update | Delete | ListUser | DeleteUser
Steps = Generator[Call, Any, T]


class Then(NamedTuple, Generic[T]):
    """One store call, and the function that turns its answer into the result (or more steps)."""

    call: Call
    then: Callable[[Any], T | Steps[T]]


#: What needs a store before it gives its result.
Pending = Steps[T] | Then[T]


def failed(store: object, call: Call, exc: Exception) -> StoreError:
    """A store's own exception as a StoreError naming the call (network errors: StoreUnavailable)."""
    name = type(call).__name__.lower()
    kind = StoreUnavailable if isinstance(exc, OSError) else StoreError  # ConnectionError, TimeoutError...
    return kind(f"{type(store).__name__}.{name}() failed: {exc!r}")


def run_sync(steps: Pending[T], store: Any) -> T:
    """Drive ``steps`` against a synchronous store.

    A store's own :class:`~sessionware.StoreError` passes through; anything
    else it raises becomes one naming the call.
    """
    if type(steps) is Then:
        call = steps.call
        try:
            answer = call.apply(store)
        except SessionError:
            raise
        except Exception as exc:
            raise failed(store, call, exc) from exc
        done = steps.then(answer)
        if type(done) is not GeneratorType:
            return done  # type: ignore[return-value]
        steps = done
    assert isinstance(steps, GeneratorType)
    try:
        call = next(steps)
        while True:
            try:
                result = call.apply(store)
            except SessionError:
                raise
            except Exception as exc:
                raise failed(store, call, exc) from exc
            call = steps.send(result)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def run_async(steps: Pending[T], store: Any) -> T:
    """Drive ``steps`` against an asynchronous store (see :func:`run_sync`), through its
    ``inline`` face first when it has one."""
    inline = getattr(store, "inline", None)
    if type(steps) is Then:
        call = steps.call
        answer = _BLOCKED if inline is None else _inline(call, inline, store)
        if answer is _BLOCKED:
            answer = await _awaited(call, store)
        done = steps.then(answer)
        if type(done) is not GeneratorType:
            return done  # type: ignore[return-value]
        steps = done
    assert isinstance(steps, GeneratorType)
    try:
        call = next(steps)
        while True:
            answer = _BLOCKED if inline is None else _inline(call, inline, store)
            if answer is _BLOCKED:
                answer = await _awaited(call, store)
            call = steps.send(answer)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


_BLOCKED: Any = object()


def run_inline(steps: Pending[T], store: Any) -> tuple[bool, Any]:
    """Drive a :class:`Then` through the store's inline face, without a coroutine.

    ``(True, result)`` when it is done; otherwise ``(False, rest)``, where
    ``rest`` is what is left to drive with :func:`run_async` (all of
    ``steps`` if nothing could be answered inline). The ASGI adapter calls
    this first: a request whose one store call the inline face can answer
    costs no coroutine at all.
    """
    inline = getattr(store, "inline", None)
    if inline is None or type(steps) is not Then:
        return False, steps
    call = steps.call
    try:
        answer = inline.load(call[0]) if type(call) is Load else call.apply(inline)  # the common one, direct
    except WouldBlock:
        return False, steps
    except SessionError:
        raise
    except Exception as exc:
        raise failed(store, call, exc) from exc
    done = steps.then(answer)
    if type(done) is GeneratorType:
        return False, done
    return True, done


def _inline(call: Call, inline: Any, store: Any) -> Any:
    """The answer of the store's inline face, or ``_BLOCKED`` if it would have to wait."""
    try:
        return call.apply(inline)
    except WouldBlock:
        return _BLOCKED
    except SessionError:
        raise
    except Exception as exc:
        raise failed(store, call, exc) from exc


async def _awaited(call: Call, store: Any) -> Any:
    try:
        pending: Awaitable[Any] = call.apply(store)
        return await pending
    except SessionError:
        raise
    except Exception as exc:
        raise failed(store, call, exc) from exc
