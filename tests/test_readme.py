"""The README's examples run as written."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from .conftest import SECRET

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.DOTALL)


def run_block(index: int) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile("import os\n" + BLOCKS[index], f"README block {index}", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture(autouse=True)
def secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRET_KEY_BASE", SECRET)
    monkeypatch.chdir(tmp_path)  # the example's SQLiteStore("sessions.db") lands here


def test_the_starlette_example_logs_in_and_out() -> None:
    client = TestClient(run_block(0)["app"])
    assert client.get("/me").json() == {"user_id": None}
    client.post("/login")
    assert client.get("/me").json() == {"user_id": 42}
    client.post("/logout")
    assert client.get("/me").json() == {"user_id": None}
    assert os.path.exists("sessions.db")


def test_the_fastapi_example_keeps_a_cart() -> None:
    client = TestClient(run_block(1)["app"])
    assert client.post("/cart/apple").json() == ["apple"]
    assert client.post("/cart/pear").json() == ["apple", "pear"]
