"""The agent's payment journal: what was signed for each ref, written durably before it is
broadcast, so a retry (same or another process) finishes that payment instead of paying again
(docs/sdk.md, "The journal").

One small JSON file per ref under ``<dir>/<chain id>-<vault>-<agent>/``, so it grows by one file
per payment. :meth:`Journal.prune` removes the settled ones: once a payment is mined its ref is
answered from the vault's logs (``PaymentExecuted``/``PaymentRequested``), so the entry is no
longer needed to pay at most once (docs/operations.md, "The journal")."""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes
from web3.exceptions import TransactionNotFound

from agentwallet.errors import JournalError

if TYPE_CHECKING:
    from agentwallet.chain.connection import Chain

__all__ = ["Journal"]


class Journal:
    """Signed payment transactions by (chain id, vault, agent, ref), written before broadcast."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._local = threading.local()

    def last_written(self) -> tuple[int, dict[str, Any] | None]:
        """How many entries this thread has written through this journal, and the last one:
        compare before and after a call to know whether it journaled (so may have sent)."""
        return getattr(self._local, "count", 0), getattr(self._local, "entry", None)

    def _path(self, chain_id: int, vault: str, agent: str, ref: bytes) -> Path:
        return self.directory / f"{chain_id}-{vault.lower()}-{agent.lower()}" / f"{ref.hex()}.json"

    def get(self, chain_id: int, vault: str, agent: str, ref: bytes) -> dict[str, Any] | None:
        """The journaled entry, or None."""
        path = self._path(chain_id, vault, agent, ref)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise _unreadable(path, f"{type(exc).__name__}: {exc}") from None
        if not isinstance(data, dict) or not _REQUIRED <= data.keys():
            raise _unreadable(path, f"not an entry with {', '.join(sorted(_REQUIRED))}")
        return data

    def entries(self, chain_id: int, agent: str) -> Iterator[dict[str, Any]]:
        """Every readable entry of ``agent`` on ``chain_id`` (any vault); unreadable files are
        skipped here (:meth:`get` names them)."""
        for path in self.directory.glob(f"{chain_id}-*-{agent.lower()}/*.json"):
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict):
                yield data

    def put(self, chain_id: int, vault: str, agent: str, ref: bytes, entry: dict[str, Any]) -> None:
        """Write an entry atomically and durably (temp file, fsync, rename). Any failure (disk
        full, file size limit, unwritable directory) raises :class:`JournalError` and removes
        the temp file: the entry is either whole on disk or absent."""
        path = self._path(chain_id, vault, agent, ref)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(entry, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            self._local.count = getattr(self._local, "count", 0) + 1
            self._local.entry = entry
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # pragma: no cover - the directory itself is gone or unreadable
                pass
            raise JournalError(
                f"cannot write the payment journal in {path.parent} ({exc.strerror or exc}): "
                "nothing was sent; free disk space or make the directory writable, then retry "
                "with the same ref"
            ) from None

    def delete(self, chain_id: int, vault: str, agent: str, ref: bytes) -> None:
        self._path(chain_id, vault, agent, ref).unlink(missing_ok=True)

    def prune(self, chain: Chain, older_than: float, *, now: float | None = None) -> int:
        """Remove the entries of ``chain`` written more than ``older_than`` seconds ago whose
        transaction is mined (or can never be: its nonce went to another transaction), and
        temp files left by a crash that old; return how many entries were removed.

        A pending entry (not mined, nonce still free) and a relayed intent's entry are kept:
        they are what stops a retry from paying twice. A pruned ref reused for the same payment
        is answered from the vault's logs; only a node without ``eth_getLogs`` needs the
        journal for that."""
        cutoff = (time.time() if now is None else now) - older_than
        removed = 0
        for folder in self.directory.glob(f"{chain.chain_id}-*"):
            for stray in folder.glob(".*.tmp"):
                if stray.stat().st_mtime < cutoff:
                    stray.unlink(missing_ok=True)
            for path in folder.glob("*.json"):
                try:
                    entry = json.loads(path.read_text())
                except (OSError, ValueError):
                    continue
                if float(entry.get("created", now or time.time())) >= cutoff:
                    continue
                if entry.get("kind") == "intent" or not _settled(chain, entry):
                    continue
                path.unlink(missing_ok=True)
                removed += 1
        return removed


#: Keys every entry has (direct payments and intents alike).
_REQUIRED = frozenset({"ref", "token", "to", "amount"})


def _unreadable(path: Path, why: str) -> JournalError:
    return JournalError(
        f"the payment journal entry {path} is damaged ({why}); it is left in place and nothing "
        "was sent. Its payment may be pending or mined: check AgentWallet.payment_state(ref) "
        "(the vault's logs), then move the file aside (mv it to a name not ending in .json) "
        "and retry pay with the same ref",
        path=path,
    )


def _settled(chain: Chain, entry: dict[str, Any]) -> bool:
    """Whether a direct payment's journaled transaction is mined, or dead (its nonce used)."""
    try:
        chain.w3.eth.get_transaction_receipt(HexBytes(entry["tx_hash"]))
        return True
    except TransactionNotFound:
        return chain.nonce(entry["agent"]) > int(entry["nonce"])
