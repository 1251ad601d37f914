from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # The service runs on asyncio (uvicorn/granian); trio is not a target.
    return "asyncio"
