"""What a request says about its client: user agent and address, for the session registry."""

from __future__ import annotations

from typing import Any

__all__ = ["client_of"]


def client_of(request: Any) -> tuple[str | None, str | None]:
    """``(user_agent, ip)`` from an ASGI scope or a WSGI environ; None for what is unknown.

    The IP is the peer's address as the server saw it: behind a proxy, configure
    the server to take it from forwarded headers (uvicorn ``--proxy-headers``).
    """
    if not isinstance(request, dict):
        return None, None
    if "headers" in request:  # ASGI
        agent = None
        for name, value in request["headers"]:
            if name == b"user-agent":
                agent = value.decode("latin-1")
                break
        client = request.get("client")
        return agent, (str(client[0]) if client else None)
    return request.get("HTTP_USER_AGENT"), request.get("REMOTE_ADDR")  # WSGI
