"""Wrong arguments to sessionware's classes raise a ConfigurationError that names the fix.

Python's own ``TypeError: __init__() got an unexpected keyword argument
'cookie_secure'`` says what is wrong but not what is right. A class that
derives from :class:`CheckedArguments` checks its arguments against its
``__init__`` before that runs, and says ``unknown option 'cookie_secure' --
did you mean 'secure'?``; options named as another library names them (the
Starlette names given to ``sessionware.SessionMiddleware``) get sessionware's
name instead. Type checkers still see the typed ``__init__``.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, TypeVar

from .errors import ConfigurationError

__all__ = ["STARLETTE_NAMES", "CheckedArguments", "check_options", "unknown_option"]

C = TypeVar("C", bound="CheckedArguments")

#: Starlette ``SessionMiddleware``'s option names, and what ``sessionware.SessionMiddleware`` takes.
STARLETTE_NAMES = {
    "secret_key": "secret_key_base=...",
    "session_cookie": "cookie_name=...",
    "max_age": "expiry=Expiry(idle_timeout=..., absolute_timeout=...), and persistent=True for a "
    "cookie that outlives the browser",
    "https_only": "secure=True",
}
_DROP_IN = (
    "; sessionware.starlette.SessionMiddleware, the drop-in replacement, takes Starlette's names as they are"
)


def unknown_option(owner: str, name: str, known: Iterable[str], renamed: Mapping[str, str] = {}) -> str:
    """The message for an option ``owner`` does not take, with the closest one it does."""
    known = sorted(known)
    if name in renamed:
        drop_in = _DROP_IN if renamed is STARLETTE_NAMES else ""
        return f"{owner} got {name!r}, Starlette's option: here it is {renamed[name]}{drop_in}"
    related = [option for option in known if len(option) > 3 and (option in name or name in option)]
    close = difflib.get_close_matches(name, related or known, n=1, cutoff=0 if related else 0.6)
    hint = f" -- did you mean {close[0]!r}?" if close else ""
    return f"{owner} got an unknown option {name!r}{hint} (it takes: {', '.join(known)})"


def check_options(
    owner: str, options: Iterable[str], known: Iterable[str], renamed: Mapping[str, str] = {}
) -> None:
    """Raise the ConfigurationError of :func:`unknown_option` for the first unknown name."""
    known = set(known)
    for name in options:
        if name not in known:
            raise ConfigurationError(unknown_option(owner, name, known, renamed))


@functools.cache
def _signature(init: Callable[..., None]) -> inspect.Signature:
    return inspect.signature(init)


class CheckedArguments:
    """A base class whose constructor arguments are checked before ``__init__`` runs."""

    __slots__ = ()

    #: Other libraries' option names, and what this class takes instead.
    _renamed: ClassVar[Mapping[str, str]] = {}

    def __new__(cls: type[C], *args: Any, **kwargs: Any) -> C:
        if args or kwargs:  # none at all: copy.copy() or unpickling, which call __new__(cls) alone
            _check(cls, args, kwargs)
        return super().__new__(cls)


#: What to say about a required option left out.
_HOW = {"secret_key_base": "; make one with: python -m sessionware gen-secret"}


def _check(cls: type[CheckedArguments], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    signature = _signature(cls.__init__)
    parameters = list(signature.parameters.values())[1:]  # not self
    owner = cls.__name__
    if not any(p.kind is p.VAR_KEYWORD for p in parameters):
        names = (p.name for p in parameters if p.kind is not p.VAR_POSITIONAL)
        check_options(owner, kwargs, names, cls._renamed)
    try:
        signature.bind(None, *args, **kwargs)
    except TypeError:
        positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        given = {p.name for p in positional[: len(args)]} | set(kwargs)
        for p in parameters:
            if (
                p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                and p.name not in given
            ):
                how = _HOW.get(p.name, "")
                raise ConfigurationError(f"{owner} needs {p.name}=... (it is required){how}") from None
        named = [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]
        shown = ", ".join([*(p.name for p in positional), *(f"{name}=..." for name in named[:2])])
        raise ConfigurationError(
            f"{owner} takes {len(positional)} positional argument(s) and its options by name: "
            f"{owner}({shown}, ...)"
        ) from None
