"""Connect to a chain: the embedded py-evm chain, a local anvil node, or any JSON-RPC URL.

``connect()`` with no URL (and no ``AGENTWALLET_RPC``) gives the embedded chain: eth-tester's
py-evm backend (Prague rules) running in this process. A URL gives an HTTP JSON-RPC chain.
Development-chain operations (dev accounts, snapshots, time travel) live in
:mod:`agentwallet.chain.devchain`; sending, in :mod:`agentwallet.chain.tx`.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from eth_account.signers.base import BaseAccount
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.providers import HTTPProvider
from web3.types import BlockIdentifier, TxParams, TxReceipt

from agentwallet.chain.caching import FeeCache, pin_chain_id
from agentwallet.chain.devchain import DevelopmentChain, embedded_web3
from agentwallet.chain.tx import RECEIPT_TIMEOUT, Broadcaster, Transactor
from agentwallet.errors import ChainConnectionError, TransactionFailedError
from agentwallet.protocol.addresses import as_checksum

__all__ = ["EMBEDDED", "Chain", "connect"]

EMBEDDED = "embedded"
DEFAULT_PRIORITY_FEE = Web3.to_wei(1, "gwei")
_FEE_FIELDS = ("gasPrice", "maxFeePerGas", "maxPriorityFeePerGas")
_PIPELINE_FIELDS = ("from", "to", "data", "value", "gas", "nonce", *_FEE_FIELDS)


class Chain(DevelopmentChain):
    """A connected chain. Build it with :func:`connect`.

    ``w3`` is the underlying :class:`web3.Web3`; the methods here cover what agentwallet and
    its tests need on every chain: reads, fees, sending through :attr:`transactor` (the one
    transaction pipeline), and on development chains dev accounts, snapshots and time.
    """

    def __init__(
        self,
        w3: Web3,
        *,
        url: str | None,
        tester: Any = None,
        broadcaster: Broadcaster | None = None,
    ) -> None:
        self.w3 = w3
        self.url = url  #: None for the embedded chain
        self._tester = tester  # eth_tester.EthereumTester for the embedded chain
        self.chain_id: int = w3.eth.chain_id  # the one eth_chainId of this connection
        pin_chain_id(w3, self.chain_id)
        #: The fee quote, reused for :data:`~agentwallet.chain.caching.FEE_TTL` seconds.
        self.fees = FeeCache(self._fetch_fee_params)
        self._snapshots: list[int] = []  # embedded only: live snapshot ids, oldest first
        #: The transaction pipeline every agentwallet transaction on this chain goes through.
        self.transactor = Transactor(self, broadcaster)

    def __repr__(self) -> str:
        where = "embedded" if self.is_embedded else self.url
        return f"Chain({where}, chain_id={self.chain_id})"

    def with_broadcaster(self, broadcaster: Broadcaster) -> Chain:
        """This chain (same node, nonce locks, snapshots, deployment record) sending its
        transactions through ``broadcaster``: a relay, or a test double."""
        view = copy.copy(self)
        view.transactor = Transactor(view, broadcaster, self.transactor.nonces)
        return view

    # ---------------------------------------------------------------- reads

    def timestamp(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def balance(self, address: str, block: BlockIdentifier = "latest") -> int:
        """ETH balance of ``address`` in wei (at ``block``)."""
        return int(self.w3.eth.get_balance(as_checksum(address), block_identifier=block))

    def code(self, address: str) -> bytes:
        """The runtime code at ``address`` (empty for an account without code)."""
        return bytes(self.w3.eth.get_code(as_checksum(address)))

    def nonce(self, address: str, block: BlockIdentifier = "latest") -> int:
        """Transactions sent by ``address`` (mined at ``block``; ``"pending"`` counts the pool)."""
        return int(self.w3.eth.get_transaction_count(as_checksum(address), block))

    # ---------------------------------------------------------------- transactions

    def fee_params(self) -> dict[str, int]:
        """EIP-1559 fees: priority = node suggestion (1 gwei on dev chains or if none),
        max fee = 2 * base fee + priority; one quote is reused for ``self.fees.ttl`` seconds."""
        return self.fees.get()

    def _fetch_fee_params(self) -> dict[str, int]:
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        priority: int = DEFAULT_PRIORITY_FEE
        if not self.is_development:
            try:
                priority = int(self.w3.eth.max_priority_fee)
            except Exception:  # noqa: BLE001 - fall back to the default tip
                priority = DEFAULT_PRIORITY_FEE
        return {"maxFeePerGas": 2 * base_fee + priority, "maxPriorityFeePerGas": priority}

    def send_transaction(
        self,
        account: BaseAccount,
        tx: TxParams | dict[str, Any],
        *,
        check: bool = True,
        timeout: float = RECEIPT_TIMEOUT,
    ) -> TxReceipt:
        """Send ``tx`` through the transaction pipeline (:attr:`transactor`) and return the
        receipt: nonce, chainId, gas (estimate * 1.2 + 10k) and fees are filled in unless
        given; the sender's balance is checked; it is signed locally and broadcast.

        A transaction that would revert fails at gas estimation with web3's
        ``ContractLogicError``/``ContractCustomError`` (nothing is sent); a given ``gas`` skips
        the estimation. With ``check``, a mined transaction with status 0 raises
        :class:`TransactionFailedError`.
        """
        params: dict[str, Any] = dict(tx)
        fees = {k: int(params[k]) for k in _FEE_FIELDS if k in params}
        to = params.get("to")
        return self.transactor.send(
            account,
            None if to is None else str(to),
            bytes(HexBytes(params.get("data", b""))),
            int(params.get("value", 0)),
            gas=None if params.get("gas") is None else int(params["gas"]),
            nonce=None if params.get("nonce") is None else int(params["nonce"]),
            fees=fees or None,
            fields={k: v for k, v in params.items() if k not in _PIPELINE_FIELDS},
            check=check,
            timeout=timeout,
            decode_reverts=False,
        )

    def transact(
        self, function: ContractFunction, sender: BaseAccount, *, value: int = 0
    ) -> TxReceipt:
        """Send a contract function call as a locally signed transaction."""
        data = function._encode_transaction_data()
        return self.send_transaction(sender, {"to": function.address, "data": data, "value": value})

    def contract(self, artifact_name: str, address: str) -> Contract:
        """A web3 contract object for an already deployed agentwallet contract."""
        from agentwallet.bindings.artifacts import load_artifact

        abi = load_artifact(artifact_name)["abi"]
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def deploy(
        self,
        artifact_name: str | Mapping[str, Any],
        *args: Any,
        sender: BaseAccount | None = None,
        value: int = 0,
    ) -> Contract:
        """Deploy the packaged artifact ``artifact_name`` (or an artifact dict, e.g. from
        :func:`agentwallet._build.compiler.compile_all`) with constructor ``args``.

        ``sender`` defaults to the first dev account on development chains.
        """
        from agentwallet.bindings.artifacts import load_artifact

        if sender is None:
            self._require_development("default deployers (dev accounts)")
            sender = self.dev_accounts[0]
        artifact = load_artifact(artifact_name) if isinstance(artifact_name, str) else artifact_name
        factory = self.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        data = factory.constructor(*args).data_in_transaction
        receipt = self.send_transaction(sender, {"data": data, "value": value})
        address = receipt["contractAddress"]
        if address is None:  # pragma: no cover - a successful creation always has an address
            raise TransactionFailedError(
                f"deploying {artifact['contractName']} produced no contract address",
                receipt=receipt,
            )
        return self.w3.eth.contract(address=address, abi=artifact["abi"])

    # ---------------------------------------------------------------- raw RPC

    def raw_request(self, method: str, params: Sequence[Any]) -> Any:
        """The node's raw JSON-RPC response to ``method`` (``result`` or ``error``)."""
        return self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]

    def raw_request_bytes(self, method: str, params: Sequence[Any]) -> bytes | None:
        """The node's JSON-RPC reply to ``method`` as the bytes it sent, unparsed (a large
        ``eth_getLogs`` answer is parsed where it is used); None when the provider cannot give
        them (not HTTP): then use :meth:`raw_request`."""
        from agentwallet.chain.web3_private import http_request_bytes

        return http_request_bytes(self.w3, method, list(params))

    def _rpc(self, method: str, params: Sequence[Any]) -> Any:
        response = self.raw_request(method, params)
        if "error" in response:
            raise ChainConnectionError(
                f"{method} failed on {self.url}: {response['error']}; is this an anvil node?"
            )
        return response.get("result")


def connect(
    url: str | None = None, *, timeout: float = 5.0, broadcaster: Broadcaster | None = None
) -> Chain:
    """Connect to ``url``, else ``$AGENTWALLET_RPC``, else the embedded chain.

    ``"embedded"`` also selects the embedded chain. Raises :class:`ChainConnectionError` if an
    HTTP node does not answer ``eth_chainId`` within ``timeout`` seconds. ``broadcaster``
    replaces the node as the place signed transactions are sent to (see
    :class:`~agentwallet.chain.tx.Broadcaster`).
    """
    url = url or os.environ.get("AGENTWALLET_RPC") or None
    if url is None or url == EMBEDDED:
        w3, tester = embedded_web3()
        return Chain(w3, url=None, tester=tester, broadcaster=broadcaster)
    if not url.startswith(("http://", "https://")):
        raise ChainConnectionError(
            f"cannot connect to {url!r}: give an http(s):// JSON-RPC URL or 'embedded'"
        )
    # fail fast: no retries
    provider = HTTPProvider(
        url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None
    )
    w3 = Web3(provider)
    started = time.monotonic()
    try:
        return Chain(w3, url=url, broadcaster=broadcaster)
    except Exception as exc:  # noqa: BLE001 - any failure here means "no usable node"
        waited = time.monotonic() - started
        raise ChainConnectionError(
            f"no JSON-RPC node answered at {url} ({type(exc).__name__} after {waited:.1f}s): "
            "start one with `agentwallet node` or pass --rpc/AGENTWALLET_RPC"
        ) from None
