from __future__ import annotations

import pytest


@pytest.fixture(params=["http1", "aiohttp"])
def upstream_kind(request: pytest.FixtureRequest) -> str:
    """Every forwarding test over our lean client and over httpx-aiohttp's (https)."""
    return str(request.param)
