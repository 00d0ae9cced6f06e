"""What every example reads from the environment: its secret and its port.

``SECRET_KEY_BASE`` keys the sessions (make one with ``python -m sessionware gen-secret``).
Without it an example still starts, with a random secret for that process only and one
warning line on stderr: its sessions then end at every restart and are not shared between
worker processes (each worker would refuse the others' cookies).

``PORT`` overrides the example's own port (each has its own, so that several run at once):

=====================  ==========================================  =========
example                run it with (from the repository root)      port
=====================  ==========================================  =========
``examples/demo``      ``make demo``                               8000
``starlette_app``      ``python -m examples.starlette_app.app``    8001
``fastapi_app``        ``python -m examples.fastapi_app.app``      8002
``litestar_app``       ``python -m examples.litestar_app.app``     8003
``quart_app``          ``python -m examples.quart_app.app``        8004
``flask_app``          ``python -m examples.flask_app.app``        8005
``django_app``         ``python -m examples.django_app.app``       8006
=====================  ==========================================  =========
"""

from __future__ import annotations

import os
import secrets
import sys

__all__ = ["NO_SECRET_WARNING", "port", "secret_key_base"]

#: The one line an example prints when ``SECRET_KEY_BASE`` is not set.
NO_SECRET_WARNING = (
    "WARNING: SECRET_KEY_BASE is not set, so this process made up a random secret: sessions end "
    "at every restart and break across several workers. Set one with: "
    "export SECRET_KEY_BASE=$(python -m sessionware gen-secret)"
)


def secret_key_base(given: str | None = None) -> str:
    """``given``, else ``$SECRET_KEY_BASE``, else a random secret and :data:`NO_SECRET_WARNING` on stderr."""
    if given:
        return given
    from_environment = os.environ.get("SECRET_KEY_BASE")
    if from_environment:
        return from_environment
    print(NO_SECRET_WARNING, file=sys.stderr, flush=True)
    return secrets.token_urlsafe(64)


def port(default: int) -> int:
    """``$PORT`` if set, else the example's own ``default``."""
    return int(os.environ.get("PORT") or default)
