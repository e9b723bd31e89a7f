"""The console's web app: Starlette routes, Jinja pages and the JSON API the page's script
calls before it asks the owner's wallet for anything.

Pages (server-rendered): ``/vaults/{name}/requests`` (pending requests, everything needed to
decide, and the buttons), ``/vaults/{name}/state`` (balances, owners, agents and limits, the
risk-reduction buttons), ``/vaults/{name}/audit`` (the trail, filterable by agent, and the
alerts of ``watch``). API (JSON): the chain and owners, the transaction or typed data of an
action with the table of what it does, and the signatures collected. Every
:class:`~agentwallet.errors.AgentWalletError` becomes ``{"error": message, "type": name}`` with
a 4xx status and nothing signed; pages show it in place of their content.

The app serves 127.0.0.1/localhost only (``TrustedHostMiddleware`` stops DNS rebinding) and
its API takes JSON bodies only (a cross-site form cannot post them without a preflight the app
does not answer).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from agentwallet._text import short, span
from agentwallet.console.audit import AuditView
from agentwallet.console.service import VAULT_ACTIONS, Console, ConsoleError
from agentwallet.errors import (
    AgentWalletError,
    NotOwnerError,
    RequestNotPendingError,
    UnknownRequestError,
    UnknownVaultError,
)

__all__ = ["create_app"]

HERE = Path(__file__).parent
#: Hosts the app answers (anything else is refused: DNS rebinding).
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]


def _status(exc: AgentWalletError) -> int:
    if isinstance(exc, UnknownVaultError | UnknownRequestError):
        return 404
    if isinstance(exc, NotOwnerError):
        return 403
    if isinstance(exc, RequestNotPendingError):
        return 409
    return 400


def _error(exc: AgentWalletError) -> JSONResponse:
    return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status_code=_status(exc))


async def _body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ConsoleError("send the request body as JSON (Content-Type: application/json)")
    try:
        data = json.loads(await request.body())
    except ValueError:
        raise ConsoleError("the request body is not JSON") from None
    if not isinstance(data, dict):
        raise ConsoleError("the request body must be a JSON object")
    return data


def _field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ConsoleError(f"missing {name!r} (a string) in the request body")
    return value


def create_app(console: Console) -> Starlette:
    """The console's ASGI app for ``console``. Route handlers are ``async`` and call the SDK
    directly: one local user, and every chain and SQLite read stays on the server's one
    event-loop thread."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["short"] = short
    templates.env.filters["span"] = span
    audit = AuditView(console.chain, console.home)

    def page(request: Request, name: str, template: str, **context: Any) -> Response:
        base = {
            "vault_names": list(console.vaults),
            "current": name,
            "chain_id": console.chain.chain_id,
            "tab": template.removesuffix(".html"),
        }
        try:
            vault = console.vault(name)
            base["vault_address"] = vault.address
            body = {**base, **context, **_content(template, name)}
            return templates.TemplateResponse(request, template, body)
        except AgentWalletError as exc:
            return templates.TemplateResponse(
                request, "error.html", {**base, "error": str(exc)}, status_code=_status(exc)
            )

    def _content(template: str, name: str) -> dict[str, Any]:
        if template == "requests.html":
            return {"requests": console.requests(name)}
        if template == "state.html":
            return {"state": console.state(name), "actions": VAULT_ACTIONS}
        raise ConsoleError(f"no page {template}")  # pragma: no cover - routes below

    async def index(request: Request) -> Response:
        first = next(iter(console.vaults))
        return RedirectResponse(f"/vaults/{first}/requests", status_code=303)

    async def requests_page(request: Request) -> Response:
        return page(request, request.path_params["name"], "requests.html")

    async def state_page(request: Request) -> Response:
        return page(request, request.path_params["name"], "state.html")

    async def audit_page(request: Request) -> Response:
        name = request.path_params["name"]
        base = {
            "vault_names": list(console.vaults),
            "current": name,
            "chain_id": console.chain.chain_id,
            "tab": "audit",
        }
        try:
            vault = console.vault(name)
            agents = [a.address for a in vault.agents()]
            data = audit.page(vault, agents, request.query_params.get("agent"), console.labels)
            return templates.TemplateResponse(
                request, "audit.html", {**base, "vault_address": vault.address, **data}
            )
        except AgentWalletError as exc:
            return templates.TemplateResponse(
                request, "error.html", {**base, "error": str(exc)}, status_code=_status(exc)
            )

    async def api_context(request: Request) -> Response:
        try:
            return JSONResponse(console.context(request.path_params["name"]))
        except AgentWalletError as exc:
            return _error(exc)

    async def api_request_tx(request: Request) -> Response:
        try:
            data = await _body(request)
            prepared = console.request_tx(
                request.path_params["name"],
                int(request.path_params["id"]),
                _field(data, "action"),
                _field(data, "from"),
            )
            return JSONResponse(prepared.to_dict())
        except AgentWalletError as exc:
            return _error(exc)

    async def api_typed_data(request: Request) -> Response:
        try:
            data = await _body(request)
            return JSONResponse(
                console.typed_data(
                    request.path_params["name"],
                    int(request.path_params["id"]),
                    _field(data, "from"),
                )
            )
        except AgentWalletError as exc:
            return _error(exc)

    async def api_signature(request: Request) -> Response:
        try:
            data = await _body(request)
            signer = data.get("signer")
            return JSONResponse(
                console.add_signature(
                    request.path_params["name"],
                    int(request.path_params["id"]),
                    _field(data, "signature"),
                    signer if isinstance(signer, str) else None,
                )
            )
        except AgentWalletError as exc:
            return _error(exc)

    async def api_vault_tx(request: Request) -> Response:
        try:
            data = await _body(request)

            def optional(key: str) -> str | None:
                value = data.get(key)
                return str(value) if value not in (None, "") else None

            prepared = console.vault_tx(
                request.path_params["name"],
                _field(data, "action"),
                _field(data, "from"),
                agent=optional("agent"),
                token=optional("token"),
                max_per_payment=optional("max"),
                allowance=optional("allowance"),
            )
            return JSONResponse(prepared.to_dict())
        except AgentWalletError as exc:
            return _error(exc)

    async def api_receipt(request: Request) -> Response:
        try:
            return JSONResponse({"receipt": console.receipt(request.path_params["hash"])})
        except (AgentWalletError, ValueError) as exc:
            return JSONResponse({"error": str(exc), "type": type(exc).__name__}, status_code=400)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        audit.close()

    routes = [
        Route("/", index),
        Route("/vaults/{name}/requests", requests_page),
        Route("/vaults/{name}/state", state_page),
        Route("/vaults/{name}/audit", audit_page),
        Route("/api/vaults/{name}/context", api_context),
        Route("/api/vaults/{name}/requests/{id:int}/tx", api_request_tx, methods=["POST"]),
        Route("/api/vaults/{name}/requests/{id:int}/typed-data", api_typed_data, methods=["POST"]),
        Route("/api/vaults/{name}/requests/{id:int}/signatures", api_signature, methods=["POST"]),
        Route("/api/vaults/{name}/actions", api_vault_tx, methods=["POST"]),
        Route("/api/receipts/{hash}", api_receipt),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=ALLOWED_HOSTS)],
        lifespan=lifespan,
    )
    return app
