"""Development chains: the embedded py-evm chain, dev accounts, snapshots and time travel.

Development chains (embedded, anvil, hardhat) have funded dev accounts and support
snapshot/revert and time travel; on any other chain those raise
:class:`NotADevelopmentChainError`.

Both the embedded chain and anvil use the same 10 dev accounts, derived from anvil's well-known
mnemonic ``test test ... junk`` at ``m/44'/60'/0'/0/i``; they are public test keys, never use
them on a real chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from agentwallet.chain.nonces import NONCES
from agentwallet.errors import NotADevelopmentChainError, SnapshotError

DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_HD_PATH = "m/44'/60'/0'/0"
DEV_ACCOUNT_COUNT = 10
#: anvil's (and hardhat's) chain id.
ANVIL_CHAIN_ID = 31337

_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


def dev_accounts_from_mnemonic(count: int = DEV_ACCOUNT_COUNT) -> list[LocalAccount]:
    """The dev accounts (public test keys) of the embedded chain and anvil."""
    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(DEV_MNEMONIC, account_path=f"{DEV_HD_PATH}/{i}") for i in range(count)
    ]


class DevelopmentChain:
    """What :class:`~agentwallet.chain.Chain` can do on a development chain: dev accounts,
    mining on demand, time travel and snapshots (the embedded chain through eth-tester, anvil
    and hardhat through their ``evm_*`` RPC methods)."""

    w3: Web3
    url: str | None
    chain_id: int
    _tester: Any  # eth_tester.EthereumTester on the embedded chain, else None
    _snapshots: list[int]  # embedded only: live snapshot ids, oldest first

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
        return dev_accounts_from_mnemonic()

    def _require_development(self, what: str) -> None:
        if not self.is_development:
            raise NotADevelopmentChainError(
                f"{what} only exist on development chains, and chain {self.chain_id} at "
                f"{self.url} is not one: use the embedded chain or `agentwallet node`"
            )

    def _rpc(self, method: str, params: Sequence[Any]) -> Any:
        raise NotImplementedError  # pragma: no cover - provided by Chain

    def timestamp(self) -> int:
        raise NotImplementedError  # pragma: no cover - provided by Chain

    # ---------------------------------------------------------------- blocks and time

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
        NONCES.forget_chain(self)  # cached policy windows are stale now
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
            NONCES.forget_chain(self)  # local nonces and cached state are from the future
            return
        NONCES.forget_chain(self)
        if not self._rpc("evm_revert", [hex(snapshot_id)]):
            raise SnapshotError(
                f"snapshot {snapshot_id} does not exist or was already reverted to: "
                "take a new snapshot after each revert"
            )

    @property
    def embedded_evm(self) -> Any:
        """The embedded chain's py-evm ``Chain`` (for fast log reads); None elsewhere."""
        return None if self._tester is None else self._tester.backend.chain


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


def embedded_web3() -> tuple[Web3, Any]:
    """A Web3 on the embedded chain (eth-tester + py-evm in this process, Prague rules) and its
    ``EthereumTester``, with reverts shaped like a node's.

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
    return Web3(_Provider(tester)), tester
