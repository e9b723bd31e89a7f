"""An example x402-priced HTTP API for development and tests, built with the ``x402`` package's
server side (``x402ResourceServer`` + ``x402HTTPResourceServer``, the framework-agnostic core of
its FastAPI middleware) on Starlette, since FastAPI is not a dependency here.

``GET /paid`` costs ``amount`` base units of ``asset`` paid to ``pay_to`` with the ``exact``
scheme's ``erc7710`` method (verified before the handler runs, settled after it succeeds, by
the facilitator at ``facilitator_url``); ``GET /free`` costs nothing. Run it::

    python -m agentwallet.examples.paid_api --facilitator http://127.0.0.1:8402 \\
        --pay-to 0x... --asset 0x... --amount 10000 --chain-id 31337 --port 8403
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp
from x402 import x402ResourceServer
from x402.http import FacilitatorConfig, HTTPFacilitatorClient
from x402.http.types import HTTPAdapter, HTTPRequestContext
from x402.http.x402_http_server import x402HTTPResourceServer
from x402.interfaces import SchemeNetworkServer
from x402.mechanisms.evm.exact import ExactEvmServerScheme

__all__ = ["Erc7710ServerScheme", "X402Middleware", "main", "paid_app"]


class Erc7710ServerScheme(ExactEvmServerScheme):
    """x402's ``exact`` EVM server scheme, also accepting ``assetTransferMethod: erc7710``
    (verify before the handler, settle after it)."""

    payment_flows = {
        **ExactEvmServerScheme.payment_flows,
        "erc7710": {"supported": ("authorization",), "default": "authorization"},
    }

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]


class _StarletteAdapter(HTTPAdapter):
    def __init__(self, request: Request) -> None:
        self._request = request

    def get_header(self, name: str) -> str | None:
        return self._request.headers.get(name)

    def get_method(self) -> str:
        return self._request.method

    def get_path(self) -> str:
        return self._request.url.path

    def get_url(self) -> str:
        return str(self._request.url)

    def get_accept_header(self) -> str:
        return self._request.headers.get("accept", "")

    def get_user_agent(self) -> str:
        return self._request.headers.get("user-agent", "")

    def get_query_params(self) -> dict[str, str | list[str]]:
        return dict(self._request.query_params)

    def get_query_param(self, name: str) -> str | None:
        return self._request.query_params.get(name)

    def get_body(self) -> Any:
        return None


def _json(instructions: Any, default_status: int = 402) -> Response:
    if instructions is None:
        return JSONResponse({}, default_status)
    return JSONResponse(
        instructions.body or {}, instructions.status, headers=dict(instructions.headers or {})
    )


class X402Middleware(BaseHTTPMiddleware):
    """Starlette middleware charging the routes in ``routes`` (x402 ``RoutesConfig``): no or
    an invalid payment gets 402 with ``PAYMENT-REQUIRED``; a verified one runs the handler and,
    if it answered below 400, is settled (``PAYMENT-RESPONSE`` on the response)."""

    def __init__(self, app: ASGIApp, routes: dict[str, Any], server: x402ResourceServer) -> None:
        super().__init__(app)
        self.http = x402HTTPResourceServer(server, routes)
        self._initialized = False

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        adapter = _StarletteAdapter(request)
        context = HTTPRequestContext(
            adapter=adapter,
            path=request.url.path,
            method=request.method,
            payment_header=adapter.get_header("payment-signature"),
        )
        if not self.http.requires_payment(context):
            return await call_next(request)
        if not self._initialized:
            self.http.initialize()  # the facilitator's /supported, once
            self._initialized = True
        result = await self.http.process_http_request(context)
        if result.type == "no-payment-required":
            return await call_next(request)
        if result.type != "payment-verified":
            return _json(result.response)
        assert result.payment_payload is not None and result.payment_requirements is not None
        response = await call_next(request)
        if response.status_code >= 400:
            return response  # not served: nothing is settled
        body = b""
        async for chunk in response.body_iterator:  # type: ignore[attr-defined]
            body += chunk if isinstance(chunk, bytes) else chunk.encode()
        settled = await self.http.process_settlement(
            result.payment_payload, result.payment_requirements, context=context
        )
        if not settled.success:
            return _json(settled.response)
        headers = {**dict(response.headers), **settled.headers}
        headers.pop("content-length", None)
        return Response(body, response.status_code, headers=headers)


def paid_app(
    facilitator_url: str, pay_to: str, asset: str, prices: Mapping[str, int], chain_id: int
) -> Starlette:
    """The example API: each path in ``prices`` (e.g. ``{"/paid": 10000}``) costs that many
    base units of ``asset``; ``/free`` is free."""
    network = f"eip155:{chain_id}"
    server = x402ResourceServer(
        HTTPFacilitatorClient(FacilitatorConfig(url=facilitator_url, timeout=60.0))
    )
    # x402 2.25 types ExactEvmServerScheme.payment_flows more loosely than its own protocol
    server.register(network, cast(SchemeNetworkServer, Erc7710ServerScheme()))
    routes = {
        f"GET {path}": {
            "accepts": {
                "scheme": "exact",
                "network": network,
                "payTo": pay_to,
                "price": {
                    "amount": str(amount),
                    "asset": asset,
                    "extra": {"assetTransferMethod": "erc7710"},
                },
                "maxTimeoutSeconds": 120,
            },
            "description": f"a paid report ({path})",
            "mimeType": "application/json",
        }
        for path, amount in prices.items()
    }

    async def paid(request: Request) -> JSONResponse:
        return JSONResponse({"report": "the paid content", "path": request.url.path})

    async def free(request: Request) -> JSONResponse:
        return JSONResponse({"report": "free content"})

    routes_list = [Route(path, paid) for path in prices] + [Route("/free", free)]
    app = Starlette(routes=routes_list)
    app.add_middleware(X402Middleware, routes=routes, server=server)
    return app


def main(argv: list[str] | None = None) -> None:
    """Serve the example API on 127.0.0.1."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--facilitator", required=True, help="facilitator base URL")
    parser.add_argument("--pay-to", required=True, help="recipient address")
    parser.add_argument("--asset", required=True, help="ERC-20 token address")
    parser.add_argument("--amount", type=int, required=True, help="price in base units")
    parser.add_argument("--chain-id", type=int, default=31337)
    parser.add_argument("--port", type=int, default=8403)
    args = parser.parse_args(argv)
    prices = {"/paid": args.amount}
    app = paid_app(args.facilitator, args.pay_to, args.asset, prices, args.chain_id)
    uvicorn.run(app, host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
