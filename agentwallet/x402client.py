"""An agent pays x402-priced HTTP resources from its vault, within the vault's caps.

:func:`fetch_paid` GETs a URL; on HTTP 402 it reads the v2 ``PAYMENT-REQUIRED`` header, picks an
``exact`` requirement whose ``extra.assetTransferMethod`` is ``erc7710`` on this chain, for a
token in the agent's scope and payable to the vault's delegation manager (the vault itself),
and checks the price against the agent's policy **before anything is signed**: over the
per-payment cap or the remaining budget it raises :class:`PriceOverLimitError` (the default,
``on_over_limit="refuse"``), or with ``on_over_limit="escalate"`` it opens a normal payment
request for the owners through :meth:`AgentWallet.pay` (nothing is fetched; the result says
``escalated`` with the request id). Inside the limits it signs an ERC-7710 permission context
(the agent's EIP-712 ``Intent``: token, payTo, amount, ref = keccak256 of the URL, a fresh
unordered nonce, deadline = now + ``maxTimeoutSeconds``) and retries with ``PAYMENT-SIGNATURE``
(payload ``{delegationManager: vault, permissionContext, delegator: vault}``). The facilitator
can only settle exactly that transfer: the vault checks the execution against the intent.

The ``x402`` package supplies the types, the header codecs and :class:`x402.x402ClientSync`
(with :class:`Erc7710ClientScheme` registered: x402 2.25 has no ``erc7710`` client). x402 v1
(``X-PAYMENT``) servers are not supported: :class:`X402Error` says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import httpx
from eth_utils.crypto import keccak
from x402 import PaymentRequired, PaymentRequirements, x402ClientSync
from x402.http.constants import (
    PAYMENT_REQUIRED_HEADER,
    PAYMENT_RESPONSE_HEADER,
    PAYMENT_SIGNATURE_HEADER,
)
from x402.http.utils import (
    decode_payment_required_header,
    decode_payment_response_header,
    encode_payment_signature_header,
)

from agentwallet.errors import AgentWalletError, ContractRevertError
from agentwallet.protocol.addresses import checksum
from agentwallet.protocol.constants import AgentStatus
from agentwallet.protocol.models import TokenInfo
from agentwallet.protocol.refs import ref_text
from agentwallet.units import format_amount, parse_amount

if TYPE_CHECKING:
    from agentwallet.agent import AgentWallet

__all__ = [
    "Erc7710ClientScheme",
    "PaidFetch",
    "PaymentRejectedError",
    "PriceOverLimitError",
    "X402Error",
    "fetch_paid",
    "resource_ref",
    "sign_intent_context",
]

ERC7710 = "erc7710"


class X402Error(AgentWalletError):
    """An x402 exchange could not be completed (the message says why and what to do)."""


class PriceOverLimitError(X402Error):
    """The price is over the agent's per-payment cap or remaining budget: nothing was signed."""


class PaymentRejectedError(X402Error):
    """The server or its facilitator refused the signed payment (``reason`` from it)."""


@dataclass(frozen=True)
class PaidFetch:
    """What :func:`fetch_paid` got: ``status`` "free" (no 402), "paid" (settled, with
    ``transaction``) or "escalated" (over the limits, ``request_id`` for the owners)."""

    url: str
    status: str
    http_status: int
    body: str
    content_type: str
    amount: str = ""
    token: str = ""
    pay_to: str = ""
    ref: str = ""
    transaction: str = ""
    network: str = ""
    request_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resource_ref(url: str) -> bytes:
    """The payment reference bound into an x402 payment: keccak256 of the URL requested."""
    return bytes(keccak(text=url))


def sign_intent_context(
    wallet: AgentWallet, token: str, to: str, amount: int, ref: bytes, deadline: int
) -> bytes:
    """The agent's signed ``Intent`` (:meth:`AgentWallet.sign_intent`: a free nonce of the
    agent's unordered space, chosen from the ref) as an ERC-7710 permission context for its
    vault."""
    signed = wallet.sign_intent(to, amount, token=token, ref=ref, deadline=deadline)
    return signed.permission_context()


class Erc7710ClientScheme:
    """x402 client scheme ``exact`` with ``assetTransferMethod: erc7710`` for an agent's vault
    (register it on an :class:`x402.x402ClientSync` for ``eip155:<chain id>``)."""

    scheme = "exact"

    def __init__(self, wallet: AgentWallet, ref: bytes) -> None:
        self.wallet = wallet
        self.ref = ref

    def create_payment_payload(self, requirements: PaymentRequirements) -> dict[str, Any]:
        if (requirements.extra or {}).get("assetTransferMethod") != ERC7710:
            raise X402Error("this client pays only exact/erc7710 requirements")
        deadline = self.wallet.chain.timestamp() + max(30, int(requirements.max_timeout_seconds))
        context = sign_intent_context(
            self.wallet,
            checksum(requirements.asset),
            checksum(requirements.pay_to),
            int(requirements.amount),
            self.ref,
            deadline,
        )
        vault = self.wallet.vault.address
        return {
            "delegationManager": vault,
            "permissionContext": "0x" + context.hex(),
            "delegator": vault,
        }


def _payment_required(response: httpx.Response) -> PaymentRequired:
    header = response.headers.get(PAYMENT_REQUIRED_HEADER)
    if header is None:
        raise X402Error(
            f"{response.url} answered 402 without a {PAYMENT_REQUIRED_HEADER} header: only x402 "
            "v2 servers are supported"
        )
    try:
        required = decode_payment_required_header(header)
    except Exception as exc:  # noqa: BLE001 - a malformed header from a server
        raise X402Error(
            f"{response.url} sent a malformed {PAYMENT_REQUIRED_HEADER}: {exc}"
        ) from None
    if not isinstance(required, PaymentRequired):
        raise X402Error(f"{response.url} speaks x402 v1: only v2 is supported")
    return required


def _choose(
    wallet: AgentWallet, required: PaymentRequired
) -> tuple[PaymentRequirements, TokenInfo]:
    network = f"eip155:{wallet.chain.chain_id}"
    record = wallet.vault.bindings.agent(wallet.address)
    if record.status != AgentStatus.ACTIVE:  # say so, rather than "no token in scope"
        args = {"agent": wallet.address, "status": int(record.status)}
        raise ContractRevertError.from_error("AgentNotActive", args)
    scope = {r.token.address.lower(): r.token for r in wallet.remaining().values()}
    seen = []
    for req in required.accepts:
        seen.append(f"{req.scheme}/{(req.extra or {}).get('assetTransferMethod')} on {req.network}")
        if req.scheme != "exact" or req.network != network:
            continue
        if (req.extra or {}).get("assetTransferMethod") != ERC7710:
            continue
        info = scope.get(req.asset.lower())
        if info is not None and not info.is_eth:
            return req, info
    raise X402Error(
        f"no payment option this agent can use (exact/erc7710 on {network} in a token of its "
        f"scope); offered: {', '.join(seen) or 'nothing'}"
    )


def _check_price(
    wallet: AgentWallet, req: PaymentRequirements, info: TokenInfo, max_amount: int | None
) -> int:
    amount = int(req.amount)
    shown = f"{format_amount(amount, info.decimals)} {info.symbol}"
    if amount <= 0:
        raise X402Error(f"the server asks for {shown}: refusing a non-positive price")
    if max_amount is not None and amount > max_amount:
        raise PriceOverLimitError(
            f"the price {shown} is over the {format_amount(max_amount, info.decimals)} "
            f"{info.symbol} you accept: nothing was signed"
        )
    check = wallet.check(checksum(req.pay_to), amount, info.address)
    if not check.will_pay:
        raise PriceOverLimitError(
            f"the price {shown} is outside your limits ({', '.join(check.reasons)}; available "
            f"now {format_amount(check.available, info.decimals)}, per payment "
            f"{format_amount(check.max_per_payment, info.decimals)} {info.symbol}): nothing "
            "was signed; ask the owners, or fetch with on_over_limit='escalate'"
        )
    return amount


def fetch_paid(
    wallet: AgentWallet,
    url: str,
    *,
    max_amount: str | None = None,
    on_over_limit: Literal["refuse", "escalate"] = "refuse",
    http: httpx.Client | None = None,
    timeout: float = 60.0,
) -> PaidFetch:
    """GET ``url``, paying an x402 price from the agent's vault within its limits (see the
    module docstring). ``max_amount`` (token units, e.g. ``"0.05"``) caps the price further."""
    client = http or httpx.Client(timeout=timeout)
    try:
        return _fetch(wallet, url, max_amount, on_over_limit, client)
    except httpx.HTTPError as exc:
        raise X402Error(f"could not fetch {url}: {type(exc).__name__}: {exc}") from None
    finally:
        if http is None:
            client.close()


def _fetch(
    wallet: AgentWallet,
    url: str,
    max_amount: str | None,
    on_over_limit: str,
    client: httpx.Client,
) -> PaidFetch:
    first = client.get(url)
    if first.status_code != 402:
        return PaidFetch(url, "free", first.status_code, first.text, _ctype(first))
    required = _payment_required(first)
    req, info = _choose(wallet, required)
    cap = None if max_amount is None else parse_amount(max_amount, info.decimals)
    ref = resource_ref(url)
    base = PaidFetch(
        url,
        "",
        402,
        "",
        "",
        amount=format_amount(int(req.amount), info.decimals),
        token=info.symbol,
        pay_to=checksum(req.pay_to),
        ref=ref_text(ref),
        network=req.network,
    )
    try:
        _check_price(wallet, req, info, cap)
    except PriceOverLimitError:
        if on_over_limit != "escalate" or (cap is not None and int(req.amount) > cap):
            raise
        outcome = wallet.pay(checksum(req.pay_to), int(req.amount), info.address, ref=ref)
        return replace(
            base,
            status=outcome.status,
            transaction=outcome.tx_hash,
            request_id=getattr(outcome, "request_id", None),
        )
    x402 = x402ClientSync()
    x402.register(req.network, Erc7710ClientScheme(wallet, ref))
    x402.set_spend_controls(False)  # the vault's policy, checked above, is the spend control
    only = required.model_copy(update={"accepts": [req]})
    payload = x402.create_payment_payload(only)
    paid = client.get(
        url, headers={PAYMENT_SIGNATURE_HEADER: encode_payment_signature_header(payload)}
    )
    header = paid.headers.get(PAYMENT_RESPONSE_HEADER)
    settled = decode_payment_response_header(header) if header else None
    if paid.status_code == 402 or (settled is not None and not settled.success):
        raise PaymentRejectedError(f"{url} refused the payment: {_refusal(paid, settled)}")
    return replace(
        base,
        status="paid" if settled is not None else "unconfirmed",
        http_status=paid.status_code,
        body=paid.text,
        content_type=_ctype(paid),
        transaction=settled.transaction if settled is not None else "",
    )


def _refusal(response: httpx.Response, settled: Any) -> str:
    if settled is not None and not settled.success:
        detail = settled.error_message or ""
        return f"{settled.error_reason}{': ' + detail if detail else ''} (nothing was paid)"
    header = response.headers.get(PAYMENT_REQUIRED_HEADER)
    if header:
        try:
            again = decode_payment_required_header(header)
            return f"{again.error or 'payment required again'} (nothing was paid)"
        except Exception:  # noqa: BLE001 - the refusal is what matters
            pass
    return f"HTTP {response.status_code} (nothing was paid)"


def _ctype(response: httpx.Response) -> str:
    return str(response.headers.get("content-type", ""))
