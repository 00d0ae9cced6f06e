"""Every built-in server-side store passes the shipped store contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sessionware import MemoryStore, SQLiteStore
from sessionware.stores._thread import InThread
from sessionware.testing import FakeClock, RegistryContract

from ..conftest import make_server_store


class FakeClockContract(RegistryContract):
    """Stores that take a ``clock``: time moves by hand instead of by sleeping."""

    clock: FakeClock

    def expire(self, store: Any, seconds: float) -> None:
        self.clock.advance(seconds)


class TestMemoryStore(FakeClockContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        self.clock = FakeClock()
        return MemoryStore(clock=self.clock)


class TestSQLiteStore(FakeClockContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> SQLiteStore:
        self.clock = FakeClock()
        return SQLiteStore(tmp_path / "contract.db", clock=self.clock)


class TestSQLiteStoreInThreads(FakeClockContract):
    """The async bridge the ASGI middleware puts in front of SQLite keeps the contract."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> InThread:
        self.clock = FakeClock()
        return InThread(SQLiteStore(tmp_path / "contract.db", clock=self.clock))


class TestSQLiteStoreAsync(FakeClockContract):
    """The asyncio face the ASGI middleware uses: inline on the loop, a thread when locked."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Any:
        self.clock = FakeClock()
        return SQLiteStore(tmp_path / "contract.db", clock=self.clock).asyncio()


class TestSQLiteStoreOnTheWallClock(RegistryContract):
    """The default clock, with real sleeps, as a store without a clock option would run."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> SQLiteStore:
        return SQLiteStore(tmp_path / "contract.db")


class TestRedisStore(RegistryContract):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        return make_server_store("redis", request, tmp_path, FakeClock())


class TestRedisStoreAsync(RegistryContract):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        return make_server_store("redis", request, tmp_path, FakeClock()).asyncio()


class TestRedisClusterStore(RegistryContract):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        return make_server_store("redis-cluster", request, tmp_path, FakeClock())


class TestRedisClusterStoreAsync(RegistryContract):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        return make_server_store("redis-cluster", request, tmp_path, FakeClock()).asyncio()


class TestPostgresStore(RegistryContract):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        return make_server_store("postgres", request, tmp_path, FakeClock())


class TestPostgresStoreAsync(RegistryContract):
    @pytest.fixture
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
        return make_server_store("postgres", request, tmp_path, FakeClock()).asyncio()
