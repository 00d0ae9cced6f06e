"""pytest fixtures for apps that use sessionware.

pytest loads this plugin by itself once sessionware is installed (the
``pytest11`` entry point); ``-p no:sessionware`` turns it off. Loading it
imports the ``sessionware`` package and no web framework: each fixture imports
what it needs when a test asks for it, so the plugin works in every project
that installs sessionware, with or without Flask or Starlette.

Fixtures:
    session_clock: A fresh :class:`~sessionware.testing.FakeClock`. Pass it as
        ``clock=`` to the middleware (and to ``MemoryStore`` / ``SQLiteStore``),
        then move time with ``session_clock.advance(minutes=31)``.
    session_secret: A fresh random ``secret_key_base`` (64 bytes, URL-safe
        text), different for every test.
    session_store: A fresh :class:`~sessionware.MemoryStore` on
        ``session_clock``.

Example::

    def test_the_cart_survives_a_reload(session_clock, session_secret, session_store):
        app = make_app(secret_key_base=session_secret, store=session_store, clock=session_clock)
        client = init_test_session(TestClient(app), {"cart": [1]}, user_id=42)
        assert client.get("/cart").json() == [1]
        session_clock.advance(minutes=31)  # past the idle timeout
        assert read_session(client) is None
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sessionware.stores.memory import MemoryStore
    from sessionware.testing import FakeClock

__all__ = ["session_clock", "session_secret", "session_store"]


@pytest.fixture
def session_clock() -> FakeClock:
    """A :class:`~sessionware.testing.FakeClock`, standing still until moved."""
    from sessionware.testing import FakeClock

    return FakeClock()


@pytest.fixture
def session_secret() -> str:
    """A fresh random ``secret_key_base`` for this test (what ``python -m sessionware gen-secret`` prints)."""
    import secrets

    return secrets.token_urlsafe(64)


@pytest.fixture
def session_store(session_clock: FakeClock) -> MemoryStore:
    """A fresh in-memory session store that keeps time by ``session_clock``."""
    from sessionware.stores.memory import MemoryStore

    return MemoryStore(clock=session_clock)
