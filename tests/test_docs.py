"""The docs say what the code does: the options table, the expiry text and presets, the error
tree, the package docstring's submodules, the changelog and the stores guide are checked
against the code they describe."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest

import sessionware
from sessionware import AAL1, AAL2, AAL3, Expiry, MemoryStore, SessionError, SessionMiddleware

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start : None if end < 0 else end]


def table_rows(text: str) -> list[list[str]]:
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[2:]]


# -- the options table -------------------------------------------------------------------

#: How the table shows a default that is not a literal.
SHOWN_DEFAULTS = {
    "secret_key_base": "required",
    "store": "`CookieStore()`",
    "cookie_name": "`__Host-session` on https, `session` on http",
    "expiry": '`"aal2"`',
    "store_error_app": "plain 503",
    "clock": "`time.time`",
}


def options() -> dict[str, Any]:
    parameters = inspect.signature(SessionMiddleware).parameters
    return {name: p.default for name, p in parameters.items() if name != "app"}


def documented_options() -> dict[str, str]:
    shown: dict[str, str] = {}
    for cells in table_rows(section(README, "## Options")):
        names = re.findall(r"`(\w+)`", cells[0])
        defaults = cells[1].split(" / ") if len(names) > 1 else [cells[1]]
        assert len(defaults) == len(names), cells
        shown.update(zip(names, defaults, strict=True))
    return shown


def test_every_middleware_option_is_in_the_readme_table_with_its_default() -> None:
    shown = documented_options()
    assert set(shown) == set(options()), "the README's options table and SessionMiddleware differ"
    for name, default in options().items():
        expected = SHOWN_DEFAULTS.get(name) or f"`{default!r}`".replace("'", '"')
        assert shown[name] == expected, f"{name}: the table says {shown[name]}, the code {expected}"


def test_every_middleware_option_is_in_its_docstring() -> None:
    doc = SessionMiddleware.__doc__ or ""
    options_part = doc[doc.index("Options:") : doc.index("Example::")]
    documented = re.findall(r"^        (\w+):", options_part, re.MULTILINE)
    assert documented == list(options())


def test_the_table_covers_the_session_limit_options() -> None:
    assert {"max_sessions_per_user", "on_session_limit"} <= set(documented_options())


# -- expiry ------------------------------------------------------------------------------


def test_the_touch_interval_text_matches_the_code() -> None:
    text = " ".join(section(README, "## Expiry").split())
    assert "`touch_interval` (60 s by default, or a tenth of `idle_timeout` when that is shorter)" in text
    assert AAL2.touch_interval == AAL3.touch_interval == AAL1.touch_interval == 60
    assert Expiry(idle_timeout=300, absolute_timeout=3600).touch_interval == 30


def test_the_preset_table_matches_the_presets() -> None:
    def seconds(text: str) -> int | None:
        if text == "none":
            return None
        number, unit = text.split()
        return int(number) * {"minutes": 60, "hours": 3600, "days": 86400}[unit]

    rows = table_rows(section(README, "## Expiry"))
    presets = {"AAL1": AAL1, "AAL2": AAL2, "AAL3": AAL3}
    assert [re.match(r"`(\w+)`", row[0]).group(1) for row in rows] == list(presets)  # type: ignore[union-attr]
    for row in rows:
        preset = presets[row[0][1:5]]
        assert (seconds(row[1]), seconds(row[2])) == (preset.idle_timeout, preset.absolute_timeout), row


# -- the error tree ----------------------------------------------------------------------


def public_modules() -> list[str]:
    names = ["sessionware"]
    for package in (sessionware, importlib.import_module("sessionware.stores")):
        prefix = package.__name__ + "."
        names += [
            prefix + info.name
            for info in pkgutil.iter_modules(package.__path__)
            if not info.name.startswith("_")
        ]
    return sorted(set(names))


def exception_classes() -> dict[str, type[BaseException]]:
    """Every SessionError subclass a public module exports, by the name the tree gives it."""
    found: dict[str, type[BaseException]] = {}
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, SessionError):
                short = module_name.removeprefix("sessionware").removeprefix(".").removeprefix("errors")
                found.setdefault(value.__name__, value)
                if short and not hasattr(sessionware.errors, value.__name__):
                    found.pop(value.__name__)
                    found[f"{short}.{value.__name__}"] = value
    return found


def documented_tree() -> dict[str, tuple[str | None, set[str]]]:
    """Name -> (parent, the non-sessionware bases after "also"), from errors.py's docstring."""
    doc = sessionware.errors.__doc__ or ""
    tree: dict[str, tuple[str | None, set[str]]] = {}
    stack: list[str] = []
    for line in doc[doc.index("::") : doc.index("\n\nCatch")].splitlines():
        match = re.match(r"^    ((?:│   |    )*)(?:[├└]── )?([A-Za-z_.]+)(?:\s+\(also ([\w, ]+)\))?", line)
        if match is None or (not match.group(2)[0].isupper() and "." not in match.group(2)):
            continue
        depth = len(match.group(1)) // 4 + (1 if "──" in line else 0)
        del stack[depth:]
        also = set() if match.group(3) is None else {part.strip() for part in match.group(3).split(",")}
        tree[match.group(2)] = (stack[-1] if stack else None, also)
        stack.append(match.group(2))
    return tree


def test_the_error_tree_lists_every_exception_with_its_real_parent() -> None:
    tree = documented_tree()
    classes = exception_classes()
    assert set(tree) == set(classes), "errors.py's tree and the exception classes differ"
    names = {cls: name for name, cls in classes.items()}
    for name, cls in classes.items():
        parent, also = tree[name]
        ours = [base for base in cls.__bases__ if issubclass(base, SessionError)]
        others = {base.__name__ for base in cls.__bases__ if not issubclass(base, SessionError)}
        if cls is SessionError:
            assert parent is None
            continue
        assert parent == names[ours[0]], f"{name}: the tree says {parent}, the code {ours[0].__name__}"
        assert also == others, f"{name}: the tree says also {also}, the code {others}"


def test_the_error_tree_knows_the_exceptions_outside_errors_py() -> None:
    assert {"phoenix.EtfError", "fastapi.InvalidSessionValue"} <= set(documented_tree())


# -- the package docstring and the changelog ---------------------------------------------


def test_the_package_docstring_lists_every_public_submodule() -> None:
    doc = sessionware.__doc__ or ""
    for name in public_modules():
        if name != "sessionware":
            assert f"``{name}``" in doc, f"{name} is missing from sessionware/__init__.py's docstring"


CHANGELOG = (ROOT / "CHANGELOG.md").read_text()


@pytest.mark.parametrize("name", sessionware.__all__)
def test_the_changelog_mentions_every_public_name(name: str) -> None:
    assert f"`{name}" in CHANGELOG or f" {name}" in CHANGELOG, f"{name} is not in CHANGELOG.md"


@pytest.mark.parametrize("module", [m for m in public_modules() if m.count(".") == 1])
def test_the_changelog_mentions_every_public_submodule(module: str) -> None:
    assert module in CHANGELOG, f"{module} is not in CHANGELOG.md"


# -- the stores guide (anonymous traffic) ------------------------------------------------

STORES = (ROOT / "docs" / "stores.md").read_text()


def test_the_stores_guide_is_linked_from_the_readme() -> None:
    assert README.count("(docs/stores.md)") >= 2  # the Stores section and the list of docs


def test_the_stores_guide_covers_every_server_side_store() -> None:
    for heading in ("## MemoryStore", "## SQLiteStore", "## PostgreSQL", "## Redis"):
        assert heading in STORES


def test_the_stores_guide_states_memory_stores_real_bound() -> None:
    default = inspect.signature(MemoryStore).parameters["max_sessions"].default
    assert f"MemoryStore(max_sessions={default:_})" in STORES
    assert f"max_sessions={default:_}" in README
    assert "least recently" in section(STORES, "## MemoryStore")


def test_the_stores_guide_states_the_purge_defaults_and_methods() -> None:
    from sessionware import SQLiteStore
    from sessionware.stores import postgres, sqlite

    interval = inspect.signature(SQLiteStore).parameters["purge_interval"].default
    assert f"every `purge_interval` seconds ({interval} by default, in batches of {sqlite._PURGE_BATCH}" in (
        " ".join(STORES.split())
    )
    assert f"batches of {postgres._PURGE_BATCH:,} rows" in STORES
    assert hasattr(SQLiteStore, "purge_expired")
    assert hasattr(postgres.PostgresStore, "purge_expired")
    assert STORES.count("python -m sessionware purge --store") == 2


def test_the_stores_guide_states_the_expiry_defaults() -> None:
    assert (AAL2.idle_timeout, AAL3.idle_timeout, AAL1.absolute_timeout) == (30 * 60, 15 * 60, 30 * 86400)
    rows = {row[0]: row for row in table_rows(STORES[: STORES.index("## MemoryStore")])}
    assert rows['`"aal2"` (**the default**)'][1].startswith("30 minutes")
    assert rows['`"aal3"`'][1].startswith("15 minutes")
    assert "30 days" in rows['`"aal1"` (and `PhoenixCookieStore`\'s default)'][1]


def test_the_stores_guide_gives_redis_an_eviction_policy_that_spares_other_keys() -> None:
    redis = section(STORES, "## Redis")
    assert "maxmemory-policy volatile-ttl" in redis
    assert "maxmemory-policy volatile-lru" in redis
