"""The relay's HTTP API on Starlette (docs/relay.md): ``POST /intents``, ``POST /rotations``,
``GET /intents/{id}``, ``GET /health``. Errors are JSON ``{"error": {"code", "message"}}`` with
a 4xx/5xx status; the chain work runs in a worker thread."""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentwallet.errors import AgentWalletError, IntentRefusedError
from agentwallet.relay.service import RelayService

__all__ = ["create_app"]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def create_app(service: RelayService) -> Starlette:
    """The ASGI app serving ``service`` (run it with uvicorn on 127.0.0.1)."""

    async def _body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw)
        except ValueError:
            raise IntentRefusedError("the body is not JSON", "malformed", 400) from None

    async def _run(fn: Any, *args: Any) -> JSONResponse:
        try:
            status, record = await run_in_threadpool(fn, *args)
        except IntentRefusedError as exc:
            return _error(exc.status, exc.code, str(exc))
        except AgentWalletError as exc:  # a typed error the checks did not classify
            return _error(400, "refused", str(exc))
        return JSONResponse(record, status_code=status)

    def _post(fn: Any) -> Any:
        async def endpoint(request: Request) -> JSONResponse:
            try:
                body = await _body(request)
            except IntentRefusedError as exc:
                return _error(exc.status, exc.code, str(exc))
            return await _run(fn, body)

        return endpoint

    async def get_intent(request: Request) -> JSONResponse:
        try:
            record = service.status(str(request.path_params["job_id"]))
        except IntentRefusedError as exc:
            return _error(exc.status, exc.code, str(exc))
        return JSONResponse(record)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {"relayer": service.address, "chain_id": service.chain.chain_id, "status": "ok"}
        )

    return Starlette(
        routes=[
            Route("/intents", _post(service.submit_intent), methods=["POST"]),
            Route("/rotations", _post(service.submit_rotation), methods=["POST"]),
            Route("/intents/{job_id}", get_intent, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
