"""What a request says about its client: user agent and address, for the session registry."""

from __future__ import annotations

import ipaddress
from typing import Any

__all__ = ["client_of", "truncate_ip"]


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


def truncate_ip(ip: str) -> str:
    """The network an address is in -- IPv4 /24, IPv6 /48 -- as ``"203.0.113.0/24"``.

    What a session list shows by default: enough to tell "home" from "abroad",
    not enough to single out a household (GDPR-friendly). Text that is no
    address gives ``"unknown"``.
    """
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def context_of(request: Any) -> list[str]:
    """``[IP prefix, browser family, first Accept-Language]`` of a request, for the anomaly hook."""
    from ._devices import family

    agent, ip = client_of(request)
    language = ""
    if isinstance(request, dict):
        if "headers" in request:
            for name, value in request["headers"]:
                if name == b"accept-language":
                    language = value.decode("latin-1")
                    break
        else:
            language = request.get("HTTP_ACCEPT_LANGUAGE", "")
    primary = language.split(",", 1)[0].split(";", 1)[0].strip().lower()[:16]
    return [truncate_ip(ip) if ip else "", family(agent), primary]
