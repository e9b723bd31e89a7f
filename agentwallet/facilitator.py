"""``agentwallet facilitator``: an x402 facilitator (``/verify``, ``/settle``, ``/supported``) for
the ``exact`` scheme's ``erc7710`` asset-transfer method on one chain, on 127.0.0.1.

It follows the specification (``scheme_exact_evm.md``, ERC-7710): the execution is built here
from the payment requirements, never taken from the client (``transfer(payTo, amount)`` on the
asset, value 0, ERC-7579 single-call default mode); verification is a simulation of
``redeemDelegations([permissionContext], [mode], [execution])`` from the facilitator's own
address with an explicit gas ceiling; settlement sends that same call through the project's
transaction pipeline (:class:`agentwallet.chain.tx.Transactor`) with a gas limit no higher than
the ceiling. A permission context is settled at most once here (a replay is refused before any
gas is spent), and the vault refuses it anyway (the intent's nonce is spent).

Business failures are answered with HTTP 200 and ``isValid: false`` / ``success: false`` (what
the x402 SDK's ``HTTPFacilitatorClient`` expects); a body that is not a payment request gets 400.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode
from eth_account.signers.base import BaseAccount
from eth_utils.crypto import keccak
from hexbytes import HexBytes
from x402 import (
    PaymentPayload,
    PaymentRequirements,
    SettleResponse,
    VerifyResponse,
    x402FacilitatorSync,
)

from agentwallet.chain.tx import gas_limit
from agentwallet.errors import AgentWalletError, InvalidAddressError
from agentwallet.protocol.addresses import checksum

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from agentwallet.chain import Chain

__all__ = [
    "REDEEM_DELEGATIONS",
    "SINGLE_DEFAULT_MODE",
    "Erc7710Facilitator",
    "facilitator_app",
    "redeem_calldata",
    "transfer_execution",
]

#: ``redeemDelegations(bytes[],bytes32[],bytes[])`` (ERC-7710).
REDEEM_DELEGATIONS = bytes.fromhex("cef6d209")
#: ERC-7579 mode: single call, default execution (revert on failure).
SINGLE_DEFAULT_MODE = bytes(32)
TRANSFER = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
DEFAULT_GAS_CEILING = 250_000


def transfer_execution(asset: str, pay_to: str, amount: int) -> bytes:
    """ERC-7579 single execution ``abi.encodePacked(asset, 0, transfer(payTo, amount))``."""
    call = TRANSFER + encode(["address", "uint256"], [checksum(pay_to), amount])
    return bytes.fromhex(checksum(asset)[2:]) + bytes(32) + call


def redeem_calldata(permission_context: bytes, execution: bytes) -> bytes:
    """Calldata of ``redeemDelegations([context], [single default mode], [execution])``."""
    args = encode(
        ["bytes[]", "bytes32[]", "bytes[]"],
        [[permission_context], [SINGLE_DEFAULT_MODE], [execution]],
    )
    return REDEEM_DELEGATIONS + args


class _Refused(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Erc7710Facilitator:
    """The x402 ``SchemeNetworkFacilitator`` for ``exact``/``erc7710`` on ``chain``, sending
    from ``signer`` (which pays the gas)."""

    scheme = "exact"
    caip_family = "eip155:*"

    def __init__(
        self, chain: Chain, signer: BaseAccount, *, gas_ceiling: int = DEFAULT_GAS_CEILING
    ) -> None:
        self.chain = chain
        self.signer = signer
        self.address = checksum(str(signer.address))
        self.network = f"eip155:{chain.chain_id}"
        self.gas_ceiling = gas_ceiling
        self._settled: set[bytes] = set()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Erc7710Facilitator(address={self.address}, network={self.network})"

    def get_extra(self, network: str) -> dict[str, Any] | None:
        return None

    def get_signers(self, network: str) -> list[str]:
        return [self.address]

    # ------------------------------------------------------------------ checks

    def _build(self, payload: PaymentPayload, req: PaymentRequirements) -> tuple[str, bytes, str]:
        """(delegation manager, calldata, delegator) for a payment that fits ``req``."""
        if req.scheme != "exact" or req.network != self.network:
            raise _Refused("unsupported_scheme", f"only exact on {self.network} is settled here")
        if (req.extra or {}).get("assetTransferMethod") != "erc7710":
            raise _Refused("unsupported_scheme", "only the erc7710 asset-transfer method")
        accepted = payload.accepted
        for field in ("scheme", "network", "asset", "amount", "pay_to"):
            if str(getattr(accepted, field)).lower() != str(getattr(req, field)).lower():
                raise _Refused(
                    "invalid_payload", f"the payment accepted another {field} than required"
                )
        body = payload.payload
        try:
            manager = checksum(str(body["delegationManager"]), "delegationManager")
            delegator = checksum(str(body["delegator"]), "delegator")
            context = bytes(HexBytes(str(body["permissionContext"])))
            amount = int(req.amount)
            execution = transfer_execution(req.asset, req.pay_to, amount)
        except (KeyError, ValueError, InvalidAddressError) as exc:
            raise _Refused("invalid_payload", f"malformed erc7710 payload: {exc}") from None
        if amount <= 0 or not context:
            raise _Refused("invalid_payload", "empty permission context or non-positive amount")
        if keccak(context) in self._settled:
            raise _Refused("payment_replayed", "this permission context was already settled")
        return manager, redeem_calldata(context, execution), delegator

    def _simulate(self, manager: str, data: bytes) -> int:
        try:
            estimate = self.chain.transactor.simulate(self.address, manager, data)
        except AgentWalletError as exc:
            raise _Refused("invalid_payload", f"{type(exc).__name__}: {exc}") from None
        if estimate > self.gas_ceiling:
            raise _Refused(
                "invalid_payload",
                f"redeemDelegations needs {estimate} gas, above this facilitator's ceiling "
                f"{self.gas_ceiling}",
            )
        return estimate

    # ------------------------------------------------------------------ x402 interface

    def verify(
        self, payload: PaymentPayload, requirements: PaymentRequirements, context: Any = None
    ) -> VerifyResponse:
        payer = str(payload.payload.get("delegator", "")) or None
        try:
            manager, data, payer = self._build(payload, requirements)
            self._simulate(manager, data)
        except _Refused as refusal:
            return VerifyResponse(
                is_valid=False,
                invalid_reason=refusal.reason,
                invalid_message=str(refusal),
                payer=payer,
            )
        return VerifyResponse(is_valid=True, payer=payer)

    def settle(
        self, payload: PaymentPayload, requirements: PaymentRequirements, context: Any = None
    ) -> SettleResponse:
        payer = str(payload.payload.get("delegator", "")) or None
        with self._lock:  # one settlement at a time: the replay check and the send are atomic
            try:
                manager, data, payer = self._build(payload, requirements)
                estimate = self._simulate(manager, data)
                key = keccak(bytes(HexBytes(str(payload.payload["permissionContext"]))))
                self._settled.add(key)
                gas = min(gas_limit(estimate), self.gas_ceiling)
                receipt = self.chain.transactor.send(self.signer, manager, data, gas=gas)
            except _Refused as refusal:
                return self._failed(refusal.reason, str(refusal), payer, requirements)
            except AgentWalletError as exc:
                return self._failed(
                    "unexpected_settle_error", f"{type(exc).__name__}: {exc}", payer, requirements
                )
        return SettleResponse(
            success=True,
            payer=payer,
            transaction=HexBytes(receipt["transactionHash"]).to_0x_hex(),
            network=requirements.network,
            amount=requirements.amount,
        )

    @staticmethod
    def _failed(
        reason: str, message: str, payer: str | None, req: PaymentRequirements
    ) -> SettleResponse:
        return SettleResponse(
            success=False,
            error_reason=reason,
            error_message=message,
            payer=payer,
            transaction="",
            network=req.network,
        )


def facilitator_app(scheme: Erc7710Facilitator) -> Starlette:
    """The facilitator's HTTP API as a Starlette app (serve it on 127.0.0.1 with uvicorn)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from x402.schemas import parse_payment_payload
    from x402.schemas.errors import SchemeNotFoundError

    core = x402FacilitatorSync()
    core.register([scheme.network], scheme)

    async def supported(request: Request) -> JSONResponse:
        return JSONResponse(core.get_supported().model_dump(by_alias=True, exclude_none=True))

    async def parse(request: Request) -> tuple[Any, PaymentRequirements] | JSONResponse:
        try:
            body = await request.json()
            payload = parse_payment_payload(body["paymentPayload"])
            requirements = PaymentRequirements.model_validate(body["paymentRequirements"])
        except Exception as exc:  # noqa: BLE001 - anything unparsable is the client's error
            return JSONResponse({"error": f"malformed request: {type(exc).__name__}"}, 400)
        if not isinstance(payload, PaymentPayload):
            return JSONResponse({"error": "only x402 v2 payment payloads are accepted"}, 400)
        return payload, requirements

    async def verify(request: Request) -> JSONResponse:
        parsed = await parse(request)
        if isinstance(parsed, JSONResponse):
            return parsed
        try:
            result = await run_in_threadpool(core.verify, *parsed)
        except SchemeNotFoundError as exc:
            result = VerifyResponse(
                is_valid=False, invalid_reason="unsupported_scheme", invalid_message=str(exc)
            )
        return JSONResponse(result.model_dump(by_alias=True, exclude_none=True))

    async def settle(request: Request) -> JSONResponse:
        parsed = await parse(request)
        if isinstance(parsed, JSONResponse):
            return parsed
        try:
            result = await run_in_threadpool(core.settle, *parsed)
        except SchemeNotFoundError as exc:
            result = scheme._failed("unsupported_scheme", str(exc), None, parsed[1])
        return JSONResponse(result.model_dump(by_alias=True, exclude_none=True))

    return Starlette(
        routes=[
            Route("/supported", supported, methods=["GET"]),
            Route("/verify", verify, methods=["POST"]),
            Route("/settle", settle, methods=["POST"]),
        ]
    )
