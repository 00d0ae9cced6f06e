"""OpenTelemetry metrics and spans for sessions (the ``otel`` extra: ``opentelemetry-api``).

``SessionMiddleware(..., telemetry=OpenTelemetry())`` records the metrics in
:data:`METRICS` and a client span around every store call, through the
meter and tracer providers the app configured with the OpenTelemetry SDK (or
the ones given here). Without ``telemetry=`` nothing is recorded and nothing
is imported: no cost at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .errors import ConfigurationError, MissingDependency

__all__ = ["METRICS", "STORE_OPERATIONS", "OpenTelemetry"]

#: Every instrument, by name: (kind, unit, what it counts, its attributes).
METRICS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "sessionware.sessions.created": (
        "counter",
        "{session}",
        "sessions created (new, renewed, logged in)",
        (),
    ),
    "sessionware.sessions.loaded": (
        "counter",
        "{request}",
        "requests by what their session cookie gave",
        ("outcome",),  # "none" (no cookie), "loaded", "refused"
    ),
    "sessionware.log_ins": ("counter", "{log_in}", "log-ins", ("how",)),
    "sessionware.log_outs": ("counter", "{log_out}", "log-outs", ()),
    "sessionware.revocations": ("counter", "{session}", "sessions revoked", ("scope",)),  # one / all
    "sessionware.invalid_cookies": ("counter", "{cookie}", "cookies refused", ("reason",)),
    "sessionware.csrf_failures": ("counter", "{request}", "requests the CSRF check refused", ()),
    "sessionware.store.duration": (
        "histogram",
        "s",
        "store call latency",
        ("sessionware.store", "db.operation.name", "db.system"),
    ),
    "sessionware.cookie.size": ("histogram", "By", "size of the session cookie sent", ()),
}

#: The counter every request adds to, and its outcomes.
_PER_REQUEST = "sessionware.sessions.loaded"
_OUTCOMES = ("none", "loaded", "refused")

#: The store methods timed and traced (``db.operation.name``).
STORE_OPERATIONS = ("load", "create", "update", "delete", "user_sessions", "delete_user_sessions")

#: ``db.system`` (OpenTelemetry's semantic conventions) of the stores that ship.
_DB_SYSTEMS = {"Redis": "redis", "Postgres": "postgresql", "SQLite": "sqlite"}


class OpenTelemetry:
    """Record sessionware's metrics and store-call spans with OpenTelemetry.

    Options:
        meter_provider: The ``MeterProvider`` to record metrics with.
            Defaults to None: the global one (``opentelemetry.metrics``),
            which records nothing until the app configures the SDK.
        tracer_provider: The ``TracerProvider`` for spans around store calls.
            Defaults to None: the global one.

    Example::

        SessionMiddleware(app, secret_key_base=secret, store=store, telemetry=OpenTelemetry())
    """

    def __init__(self, *, meter_provider: Any = None, tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as exc:
            raise MissingDependency("opentelemetry-api", extra="otel") from exc
        meter = metrics.get_meter("sessionware", meter_provider=meter_provider)
        self._tracer = trace.get_tracer("sessionware", tracer_provider=tracer_provider)
        self._client_kind = trace.SpanKind.CLIENT
        self._error_status = trace.Status(trace.StatusCode.ERROR)
        self.instruments: dict[str, Any] = {}
        # Every request counts its outcome: tallied here (a lock and an int, well under a
        # microsecond) and reported when the SDK collects, by an observable counter -- the
        # same cumulative sums an exporter sees, without the SDK's per-call attribute work
        # (several microseconds) on every request.
        self._outcomes = dict.fromkeys(_OUTCOMES, 0)
        self._outcomes_lock = threading.Lock()
        self._observation = metrics.Observation
        for name, (kind, unit, description, _) in METRICS.items():
            if name == _PER_REQUEST:
                self.instruments[name] = meter.create_observable_counter(
                    name, callbacks=[self._observe_outcomes], unit=unit, description=description
                )
                continue
            make = meter.create_counter if kind == "counter" else meter.create_histogram
            self.instruments[name] = make(name, unit=unit, description=description)

    def add(self, name: str, amount: int = 1, attributes: dict[str, Any] | None = None) -> None:
        self.instruments[name].add(amount, attributes)

    def loaded(self, outcome: str) -> None:
        """Count one request's ``sessionware.sessions.loaded`` outcome."""
        with self._outcomes_lock:
            self._outcomes[outcome] += 1

    def _observe_outcomes(self, options: Any) -> list[Any]:
        with self._outcomes_lock:
            counts = list(self._outcomes.items())
        return [self._observation(count, {"outcome": outcome}) for outcome, count in counts]

    def record(self, name: str, value: float, attributes: dict[str, Any] | None = None) -> None:
        self.instruments[name].record(value, attributes)

    def _attributes(self, store: object, operation: str) -> dict[str, str]:
        inner = getattr(store, "store", None)  # a sync store's async face (Inline, InThread)
        name = type(store if inner is None else inner).__name__
        attributes = {
            "sessionware.store": name.lstrip("_").removeprefix("Async"),
            "db.operation.name": operation,
        }
        for word, system in _DB_SYSTEMS.items():
            if word in name:
                attributes["db.system"] = system
        return attributes

    def timed(self, store: object, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
        """``method`` of ``store``, in a span and timed."""
        attributes = self._attributes(store, operation)
        histogram = self.instruments["sessionware.store.duration"]
        tracer, kind = self._tracer, self._client_kind

        def call(*args: Any) -> Any:
            with tracer.start_as_current_span("sessionware " + operation, kind=kind, attributes=attributes):
                start = time.perf_counter()
                try:
                    return method(*args)
                finally:
                    histogram.record(time.perf_counter() - start, attributes)

        return call

    def timed_async(self, store: object, operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
        """:meth:`timed` for a method that returns an awaitable."""
        attributes = self._attributes(store, operation)
        histogram = self.instruments["sessionware.store.duration"]
        tracer, kind = self._tracer, self._client_kind

        async def call(*args: Any) -> Any:
            with tracer.start_as_current_span("sessionware " + operation, kind=kind, attributes=attributes):
                start = time.perf_counter()
                try:
                    return await method(*args)
                finally:
                    histogram.record(time.perf_counter() - start, attributes)

        return call


class Instrumented:
    """A store whose calls :class:`OpenTelemetry` times and traces; anything else passes through.

    Only the methods the store has are offered, so its optional capabilities
    (the per-user registry) are what they were.
    """

    def __init__(self, store: Any, telemetry: OpenTelemetry, *, is_async: bool, like: Any = None) -> None:
        self._store = store
        self._telemetry = telemetry
        self._is_async = is_async
        wrap = telemetry.timed_async if is_async else telemetry.timed
        for name in STORE_OPERATIONS:  # set here, where protocol checks (getattr_static) see them
            method = getattr(store, name, None)
            if method is not None:
                setattr(self, name, wrap(store if like is None else like, name, method))
        inline = getattr(store, "inline", None)
        if inline is not None:  # the face answering on the event loop: synchronous
            self.inline = Instrumented(inline, telemetry, is_async=False, like=store)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return repr(self._store)


def check(telemetry: object, owner: str) -> OpenTelemetry | None:
    if telemetry is None or isinstance(telemetry, OpenTelemetry):
        return telemetry
    raise ConfigurationError(
        f"{owner} expects telemetry to be sessionware.telemetry.OpenTelemetry() or None, got {telemetry!r}"
    )
