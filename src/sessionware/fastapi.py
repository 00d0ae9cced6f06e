"""FastAPI: the session as a dependency, and typed session values.

Install :class:`sessionware.SessionMiddleware` as for any ASGI app, then ask
for the session, or for one value of it, in the endpoint's signature::

    from typing import Annotated

    from fastapi import Depends, FastAPI

    from sessionware import SessionMiddleware
    from sessionware.fastapi import SessionDep, session_value

    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key_base=os.environ["SECRET_KEY_BASE"])

    Counter = Annotated[int, Depends(session_value("counter", int, default=0))]


    @app.post("/counter")
    def bump(session: SessionDep, counter: Counter) -> int:
        session["counter"] = counter + 1
        return counter + 1

Both work in HTTP and websocket endpoints (where the session is read-only).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar, get_args, overload

from ._session import Session
from .asgi import get_session as _find_session
from .errors import ConfigurationError, MissingDependency, SessionError

try:
    from fastapi import Depends
    from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
    from pydantic import TypeAdapter, ValidationError
    from starlette.requests import HTTPConnection
except ImportError as exc:  # pragma: no cover - exercised without FastAPI installed
    raise MissingDependency("fastapi") from exc  # the app's framework: no extra of ours

__all__ = ["InvalidSessionValue", "SessionDep", "provide_session", "session_value"]

logger = logging.getLogger("sessionware")

T = TypeVar("T")
D = TypeVar("D")
_MISSING: Any = object()


async def provide_session(connection: HTTPConnection) -> Session:
    """The dependency behind :data:`SessionDep`: the session of this request or websocket.

    The same object as ``request.session`` (and :func:`sessionware.get_session`),
    typed as :class:`~sessionware.Session`. Raises
    :class:`~sessionware.SessionError` (a 500) when no sessionware
    ``SessionMiddleware`` handled the request. It is a coroutine function so
    FastAPI calls it on the event loop, not in a worker thread.
    """
    return _find_session(connection)


SessionDep = Annotated[Session, Depends(provide_session)]
"""An endpoint parameter annotated ``SessionDep`` receives the :class:`~sessionware.Session`."""


class InvalidSessionValue(SessionError, TypeError):
    """A session value does not have the type a :func:`session_value` dependency expects.

    The session holds only what the app itself wrote (clients can neither forge
    nor change it), so this is the app's error -- a bug, or data written by an
    earlier version of the app -- and, uncaught, a 500. ``key`` is the session
    key, ``expected`` the type's name and ``errors`` pydantic's error list
    without the input values (the message never contains the value either).
    """

    def __init__(self, key: str, expected: str, errors: list[Any]) -> None:
        self.key = key
        self.expected = expected
        self.errors = errors
        details = "; ".join(
            f"{error['msg']}" + (f" at {'.'.join(map(str, error['loc']))}" if error["loc"] else "")
            for error in errors
        )
        super().__init__(
            f"session[{key!r}] does not hold a valid {expected}: {details}. Either the app stored "
            "another type under this key, or sessions written by an earlier version of the app hold "
            "an older shape: pass on_invalid='missing' to treat such values as absent"
        )


@overload
def session_value(
    key: str, type_: type[T], *, on_invalid: Literal["raise", "missing"] = "raise"
) -> Callable[[HTTPConnection], Awaitable[T]]: ...
@overload
def session_value(
    key: str, type_: type[T], *, default: D, on_invalid: Literal["raise", "missing"] = "raise"
) -> Callable[[HTTPConnection], Awaitable[T | D]]: ...
@overload
def session_value(
    key: str, type_: Any, *, default: Any = ..., on_invalid: Literal["raise", "missing"] = "raise"
) -> Callable[[HTTPConnection], Awaitable[Any]]: ...
def session_value(
    key: str, type_: Any, *, default: Any = _MISSING, on_invalid: Literal["raise", "missing"] = "raise"
) -> Callable[[HTTPConnection], Awaitable[Any]]:
    """A dependency that returns ``session[key]``, validated as ``type_`` by pydantic.

    Use it in the endpoint's signature, with the same type in the annotation
    (so type checkers see it)::

        Cart = Annotated[list[str], Depends(session_value("cart", list[str], default=[]))]

        @app.get("/cart")
        def cart(items: Cart) -> list[str]: ...

    Sessions hold JSON, so the stored value is read as pydantic reads JSON, in
    strict mode: no coercion between kinds (``"1"`` is not an ``int``, ``1``
    not a ``bool``), but what JSON cannot hold is built from its JSON form --
    a model or dataclass from an object, a ``datetime`` from ISO 8601 text, a
    ``tuple`` or ``set`` from a list. Store such values in that form, e.g.
    ``session["prefs"] = prefs.model_dump(mode="json")``.

    The endpoint gets a validated copy: changing it does not change the
    session; assign to the session to save. Reading counts as reading the
    session (the response gets ``Vary: Cookie``).

    Options:
        key: The session key. Required.
        type_: What the value must be: a class (``int``, a pydantic model, a
            dataclass...) or any type pydantic validates (``list[str]``,
            ``dict[str, int]``...). Required. For type checkers the dependency
            (a coroutine function, run on the event loop) gives ``type_`` when
            it is a class or a generic alias such as ``list[str]`` (``type_ |
            type(default)`` with a default), and ``Any`` for other forms
            (``int | None``: prefer ``int`` with ``default=None``).
        default: Returned when the key is absent, as a fresh copy on each
            request (so ``default=[]`` is safe). It is not validated and may
            be of another type (``default=None``). Without a default, a
            missing key answers the request as FastAPI answers a missing
            parameter: 422 with ``{"loc": ["session", key], "type": "missing"}``
            (a websocket is closed with code 1008).
        on_invalid: What a stored value of the wrong type does. ``"raise"``
            (default) raises :class:`InvalidSessionValue`, a 500: the app wrote
            it. ``"missing"`` treats it as absent (the default, or the 422) and
            logs a warning naming the key -- for values whose shape changed
            between versions of the app.
    """
    if not isinstance(key, str):
        raise ConfigurationError(f"session_value expects key to be a str, got {type(key).__name__}")
    if on_invalid not in ("raise", "missing"):
        raise ConfigurationError(
            f"session_value expects on_invalid to be 'raise' or 'missing', got {on_invalid!r}"
        )
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(type_)
    except Exception as exc:  # pydantic's schema errors: the type cannot be validated
        raise ConfigurationError(
            f"session_value expects a type pydantic can validate, got {type_!r}: {exc}"
        ) from exc
    expected = _type_name(type_)

    async def dependency(connection: HTTPConnection) -> Any:
        session = _find_session(connection)
        session._accessed = True  # the response depends on the session, like any read
        value = dict.get(session, key, _MISSING)
        if value is not _MISSING:
            try:
                return adapter.validate_json(json.dumps(value), strict=True)
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_input=False)
                if on_invalid == "raise":
                    raise InvalidSessionValue(key, expected, errors) from None
                logger.warning(
                    "sessionware: session[%r] does not hold a valid %s; treating it as missing", key, expected
                )
        if default is not _MISSING:
            return copy.deepcopy(default)
        error = {"type": "missing", "loc": ("session", key), "msg": "Field required", "input": None}
        if connection.scope["type"] == "websocket":
            raise WebSocketRequestValidationError([error])
        raise RequestValidationError([error])

    dependency.__name__ = dependency.__qualname__ = f"session_value({key!r}, {expected})"
    return dependency


def _type_name(type_: Any) -> str:
    if isinstance(type_, type) and not get_args(type_):
        return type_.__name__
    return repr(type_)
