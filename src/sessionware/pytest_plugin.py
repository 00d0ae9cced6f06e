"""pytest fixtures for apps that use sessionware (registered as a pytest plugin)."""

from __future__ import annotations
