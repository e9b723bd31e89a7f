"""Connect to a chain: the embedded py-evm chain, a local anvil node, or any JSON-RPC URL.

``connect()`` with no URL (and no ``AGENTWALLET_RPC``) gives the embedded chain: eth-tester's
py-evm backend (Prague rules) running in this process. A URL gives an HTTP JSON-RPC chain.

Development chains (embedded, anvil, hardhat) have funded dev accounts and support
snapshot/revert and time travel; on any other chain those raise
:class:`NotADevelopmentChainError`.

Both chains use the same 10 dev accounts, derived from anvil's well-known mnemonic
``test test ... junk`` at ``m/44'/60'/0'/0/i``; they are public test keys, never use them on a
real chain.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.providers import HTTPProvider
from web3.types import TxParams, TxReceipt

from agentwallet.errors import (
    ChainConnectionError,
    NotADevelopmentChainError,
    SnapshotError,
    TransactionFailedError,
)

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_HD_PATH = "m/44'/60'/0'/0"
DEV_ACCOUNT_COUNT = 10
ANVIL_CHAIN_ID = 31337
EMBEDDED = "embedded"
DEFAULT_PRIORITY_FEE = Web3.to_wei(1, "gwei")
RECEIPT_TIMEOUT = 120.0


def _dev_accounts_from_mnemonic(count: int = DEV_ACCOUNT_COUNT) -> list[LocalAccount]:
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"{DEV_HD_PATH}/{i}") for i in range(count)
    ]


class Chain:
    """A connected chain. Build it with :func:`connect`.

    ``w3`` is the underlying :class:`web3.Web3`; the methods here cover what agentwallet and
    its tests need on every chain: signing locally, fees, dev accounts, snapshots, time.
    """

    def __init__(self, w3: Web3, *, url: str | None, tester: Any = None) -> None:
        self.w3 = w3
        self.url = url  #: None for the embedded chain
        self._tester = tester  # eth_tester.EthereumTester for the embedded chain
        self.chain_id: int = w3.eth.chain_id
        self._snapshots: list[int] = []  # embedded only: live snapshot ids, oldest first

    def __repr__(self) -> str:
        where = "embedded" if self.is_embedded else self.url
        return f"Chain({where}, chain_id={self.chain_id})"

    # ---------------------------------------------------------------- identity

    @property
    def is_embedded(self) -> bool:
        return self._tester is not None

    @cached_property
    def client_version(self) -> str:
        try:
            return str(self.w3.client_version)
        except Exception:  # noqa: BLE001 - some nodes do not implement web3_clientVersion
            return "unknown"

    @cached_property
    def is_development(self) -> bool:
        """Embedded, anvil or hardhat (detected by client version or chain id 31337)."""
        if self.is_embedded or self.chain_id == ANVIL_CHAIN_ID:
            return True
        version = self.client_version.lower()
        return "anvil" in version or "hardhatnetwork" in version

    @cached_property
    def dev_accounts(self) -> list[LocalAccount]:
        """The 10 funded dev accounts (the same addresses on the embedded chain and anvil)."""
        self._require_development("dev accounts")
        return _dev_accounts_from_mnemonic()

    def _require_development(self, what: str) -> None:
        if not self.is_development:
            raise NotADevelopmentChainError(
                f"{what} only exist on development chains, and chain {self.chain_id} at "
                f"{self.url} is not one: use the embedded chain or `agentwallet node`"
            )

    # ---------------------------------------------------------------- blocks and time

    def timestamp(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def mine(self, n: int = 1) -> None:
        """Mine ``n`` empty blocks."""
        self._require_development("mining on demand")
        if self._tester is not None:
            self._tester.mine_blocks(n)
        else:
            for _ in range(n):
                self._rpc("evm_mine", [])

    def increase_time(self, seconds: int) -> int:
        """Move time forward and mine one block; return its timestamp.

        The new latest block's timestamp is at least ``timestamp() + seconds`` (exactly that on
        the embedded chain; anvil adds the seconds to its clock offset, so a wall-clock second
        may add on top). Later blocks continue from there.
        """
        self._require_development("time travel")
        if seconds < 0:
            raise ValueError("increase_time: seconds must be >= 0; time only moves forward")
        if self._tester is not None:
            target = self.timestamp() + seconds
            pending = int(self._tester.get_block_by_number("pending")["timestamp"])
            if target + 1 > pending:
                # eth-tester 0.14 / py-evm 0.12: time_travel(t) mines a block stamped t - 1
                self._tester.time_travel(target + 1)
            else:
                self._tester.mine_blocks(1)
        else:
            self._rpc("evm_increaseTime", [seconds])
            self._rpc("evm_mine", [])
        return self.timestamp()

    # ---------------------------------------------------------------- snapshots

    def snapshot(self) -> int:
        """Record the chain state; return an id for :meth:`revert`."""
        self._require_development("snapshots")
        if self._tester is not None:
            sid = int(self._tester.take_snapshot())
            self._snapshots.append(sid)
            return sid
        return int(self._rpc("evm_snapshot", []), 16)

    def revert(self, snapshot_id: int) -> None:
        """Return the chain to the snapshot's state (blocks, balances, timestamps).

        Same semantics on both chains: the snapshot is consumed, and so are snapshots taken
        after it. To go back to the same state again, take a new snapshot after reverting.
        """
        self._require_development("snapshots")
        if self._tester is not None:
            if snapshot_id not in self._snapshots:
                raise SnapshotError(
                    f"snapshot {snapshot_id} does not exist or was already reverted to: "
                    "take a new snapshot after each revert"
                )
            self._tester.revert_to_snapshot(snapshot_id)
            del self._snapshots[self._snapshots.index(snapshot_id) :]
            return
        if not self._rpc("evm_revert", [hex(snapshot_id)]):
            raise SnapshotError(
                f"snapshot {snapshot_id} does not exist or was already reverted to: "
                "take a new snapshot after each revert"
            )

    # ---------------------------------------------------------------- transactions

    def fee_params(self) -> dict[str, int]:
        """EIP-1559 fees: priority = node suggestion (1 gwei on dev chains or if none),
        max fee = 2 * base fee + priority."""
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
        account: LocalAccount,
        tx: TxParams | dict[str, Any],
        *,
        check: bool = True,
        timeout: float = RECEIPT_TIMEOUT,
    ) -> TxReceipt:
        """Fill nonce, chainId, gas (estimate * 1.2 + 10k) and fees; sign locally; send raw;
        wait for the receipt and return it.

        A transaction that would revert fails at gas estimation with web3's
        ``ContractLogicError``/``ContractCustomError`` (nothing is sent). With ``check``, a
        mined transaction with status 0 raises :class:`TransactionFailedError`.
        """
        params: dict[str, Any] = dict(tx)
        params.pop("from", None)
        params.setdefault("value", 0)
        params.setdefault("chainId", self.chain_id)
        if "nonce" not in params:
            params["nonce"] = self.w3.eth.get_transaction_count(account.address, "pending")
        if "gasPrice" not in params and "maxFeePerGas" not in params:
            params.update(self.fee_params())
        if "gas" not in params:
            estimate_tx = cast(TxParams, {**params, "from": account.address})
            estimate_tx.pop("nonce", None)
            params["gas"] = int(self.w3.eth.estimate_gas(estimate_tx) * 1.2) + 10_000
        signed = account.sign_transaction(params)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=timeout, poll_latency=0.05
        )
        if check and receipt["status"] != 1:
            raise TransactionFailedError(
                f"transaction {tx_hash.to_0x_hex()} was mined but reverted (status 0): "
                "simulate it with eth_call to see the revert reason",
                receipt=receipt,
            )
        return receipt

    def transact(
        self, function: ContractFunction, sender: LocalAccount, *, value: int = 0
    ) -> TxReceipt:
        """Send a contract function call as a locally signed transaction."""
        data = function._encode_transaction_data()
        return self.send_transaction(sender, {"to": function.address, "data": data, "value": value})

    def contract(self, artifact_name: str, address: str) -> Contract:
        """A web3 contract object for an already deployed agentwallet contract."""
        from agentwallet.compiler import load_artifact

        abi = load_artifact(artifact_name)["abi"]
        return self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi)

    def deploy(
        self,
        artifact_name: str | Mapping[str, Any],
        *args: Any,
        sender: LocalAccount | None = None,
        value: int = 0,
    ) -> Contract:
        """Deploy the packaged artifact ``artifact_name`` (or an artifact dict, e.g. from
        :func:`agentwallet.compiler.compile_all`) with constructor ``args``.

        ``sender`` defaults to the first dev account on development chains.
        """
        from agentwallet.compiler import load_artifact

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

    def _rpc(self, method: str, params: Sequence[Any]) -> Any:
        response = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        if "error" in response:
            raise ChainConnectionError(
                f"{method} failed on {self.url}: {response['error']}; is this an anvil node?"
            )
        return response.get("result")


_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


def _revert_data(exc: BaseException | None) -> bytes | None:
    """The raw revert data of a py-evm ``Revert`` somewhere in ``exc``'s cause/context chain."""
    from eth.exceptions import Revert

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, Revert):
            raw = exc.args[0] if exc.args else b""
            return bytes(raw) if isinstance(raw, bytes | bytearray) else b""
        exc = exc.__cause__ or exc.__context__
    return None


def _embedded() -> Chain:
    """The embedded chain: eth-tester + py-evm in this process, reverts shaped like a node's.

    Stock web3 8 + eth-tester 0.14 raise ``eth_tester.exceptions.TransactionFailed`` with the
    revert data mangled into a string. Here a revert becomes the JSON-RPC error a node returns
    (``{"code": 3, "message": "execution reverted", "data": "0x..."}``), so web3 raises the same
    ``ContractLogicError`` / ``ContractCustomError`` / ``ContractPanicError`` (with ``.data``)
    as on anvil.
    """
    from eth_abi import abi
    from eth_tester import EthereumTester
    from eth_tester.backends.pyevm.main import (
        EVMSpoofTransaction,
        PyEVMBackend,
        _execute_and_revert_transaction,
    )
    from eth_tester.exceptions import TransactionFailed
    from web3.providers.eth_tester import EthereumTesterProvider

    class _Backend(PyEVMBackend):  # type: ignore[misc]
        def call(self, transaction: Any, block_number: Any = "latest") -> Any:
            # eth-tester's call() without the lossy revert-reason decoding
            tx = dict(transaction)
            tx.setdefault("gas", self._max_available_gas())
            unsigned = self._get_normalized_and_unsigned_evm_transaction(tx, block_number)
            spoofed = EVMSpoofTransaction(unsigned, from_=transaction["from"])
            computation = _execute_and_revert_transaction(self.chain, spoofed, block_number)
            if computation.is_error:
                raise TransactionFailed(str(computation._error)) from computation._error
            return computation.output

    class _Provider(EthereumTesterProvider):
        def make_request(self, method: Any, params: Any) -> Any:
            try:
                return super().make_request(method, params)
            except Exception as exc:
                data = _revert_data(exc)
                if data is None:
                    raise
                message = "execution reverted"
                if data[:4] == _ERROR_STRING_SELECTOR:  # Error(string): like anvil, reason too
                    try:
                        message += ": " + abi.decode(["string"], data[4:])[0]
                    except Exception:  # noqa: BLE001 - malformed reason: keep the bare message
                        pass
                return {
                    "id": self._current_request_id,
                    "jsonrpc": "2.0",
                    "error": {
                        "code": 3,
                        "message": message,
                        "data": "0x" + data.hex(),
                    },
                }

    backend = _Backend.from_mnemonic(
        DEV_MNEMONIC, num_accounts=DEV_ACCOUNT_COUNT, hd_path=DEV_HD_PATH
    )
    tester = EthereumTester(backend)
    return Chain(Web3(_Provider(tester)), url=None, tester=tester)


def connect(url: str | None = None, *, timeout: float = 5.0) -> Chain:
    """Connect to ``url``, else ``$AGENTWALLET_RPC``, else the embedded chain.

    ``"embedded"`` also selects the embedded chain. Raises :class:`ChainConnectionError` if an
    HTTP node does not answer ``eth_chainId`` within ``timeout`` seconds.
    """
    url = url or os.environ.get("AGENTWALLET_RPC") or None
    if url is None or url == EMBEDDED:
        return _embedded()
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
        return Chain(w3, url=url)
    except Exception as exc:  # noqa: BLE001 - any failure here means "no usable node"
        waited = time.monotonic() - started
        raise ChainConnectionError(
            f"no JSON-RPC node answered at {url} ({type(exc).__name__} after {waited:.1f}s): "
            "start one with `agentwallet node` or pass --rpc/AGENTWALLET_RPC"
        ) from None
