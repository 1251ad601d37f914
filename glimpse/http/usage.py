"""Handler for /v2/info/usage (Images API 2.13)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.services import quotas


async def show(request: Request) -> Response:
    # Glance's route takes no body but does not refuse one either.
    return JSONResponse({"usage": quotas.usage()})
