"""python -m sessionware decode --phoenix: a Plug session cookie's session, given the endpoint's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

VECTORS = {
    vector["id"]: vector
    for vector in map(
        json.loads,
        (Path(__file__).parent / "data" / "phoenix" / "plug_cookies_public.jsonl").read_text().splitlines(),
    )
}
TYPICAL = VECTORS["pub-signed-phoenix-typical"]


def run(*args: str, env_secret: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "SECRET_KEY_BASE"}
    if env_secret is not None:
        env["SECRET_KEY_BASE"] = env_secret
    return subprocess.run(
        [sys.executable, "-m", "sessionware", *args], capture_output=True, text=True, env=env, check=False
    )


def arguments(vector: dict[str, Any]) -> list[str]:
    """The endpoint's settings as command-line options."""
    key_opts = vector["key_opts"]
    options = [
        "--phoenix",
        "--secret-key-base",
        vector["secret_key_base"],
        "--signing-salt",
        vector["signing_salt"],
        "--key-iterations",
        str(key_opts["iterations"]),
        "--key-length",
        str(key_opts["length"]),
        "--key-digest",
        key_opts["digest"],
    ]
    if vector["encryption_salt"] is not None:
        options += ["--encryption-salt", vector["encryption_salt"]]
    return options


def test_decode_phoenix_prints_a_signed_cookies_session_as_typed_json() -> None:
    result = run("decode", TYPICAL["cookie"], *arguments(TYPICAL))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown == {
        "kind": "phoenix signed",
        "format": "SFMyNTY (HS256)",
        "session": TYPICAL["session_typed"],
        "stale_key": False,
    }


def test_decode_phoenix_reads_every_format_and_key_option() -> None:
    for vector_id, kind, format in [
        ("pub-encrypted-opts-sha384-iter4096", "phoenix encrypted", "XCP (XChaCha20-Poly1305)"),
        ("pub-legacy-encrypted-a128gcm-keylen16", "phoenix encrypted", "QTEyOEdDTQ (A128GCM)"),
        ("pub-signed-opts-sha1-len20-iter1", "phoenix signed", "SFMyNTY (HS256)"),
        ("pub-signed-hmac-sha512-accepted", "phoenix signed", "SFM1MTI (HS512)"),
    ]:
        vector = VECTORS[vector_id]
        result = run("decode", vector["cookie"], *arguments(vector))
        assert result.returncode == 0, (vector_id, result.stderr)
        shown = json.loads(result.stdout)
        assert (shown["kind"], shown["format"]) == (kind, format)
        assert shown["session"] == vector["session_typed"]


def test_decode_phoenix_takes_rotated_secrets_and_the_environment() -> None:
    newer = "N" * 32 + "new-secret-key-base-for-rotation"
    result = run("decode", TYPICAL["cookie"], "--secret-key-base", newer, *arguments(TYPICAL))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stale_key"] is True  # opened by the second secret, not the first
    options = arguments(TYPICAL)
    del options[1:3]  # no --secret-key-base: $SECRET_KEY_BASE
    result = run("decode", TYPICAL["cookie"], *options, env_secret=TYPICAL["secret_key_base"])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["session"] == TYPICAL["session_typed"]


def test_decode_phoenix_refuses_a_cookie_plug_refuses_with_a_clear_error() -> None:
    vector = VECTORS["pub-neg-signed-flip-signature"]
    result = run("decode", vector["cookie"], *arguments(vector))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "error: invalid session cookie (mac)\n"


def test_decode_phoenix_needs_the_signing_salt_and_a_long_enough_secret() -> None:
    options = arguments(TYPICAL)
    del options[3:5]  # no --signing-salt
    result = run("decode", TYPICAL["cookie"], *options)
    assert result.returncode == 2
    assert "--signing-salt" in result.stderr
    options = arguments(TYPICAL)
    options[2] = TYPICAL["secret_key_base"][:40]
    result = run("decode", TYPICAL["cookie"], *options)
    assert result.returncode == 2
    assert "at least 64 bytes" in result.stderr
