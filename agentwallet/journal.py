"""The agent's payment journal: what was signed for each ref, written durably before it is
broadcast, so a retry (same or another process) finishes that payment instead of paying again
(docs/sdk.md, "The journal")."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from agentwallet.errors import JournalError

__all__ = ["Journal"]


class Journal:
    """Signed payment transactions by (chain id, vault, agent, ref), written before broadcast."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, chain_id: int, vault: str, agent: str, ref: bytes) -> Path:
        return self.directory / f"{chain_id}-{vault.lower()}-{agent.lower()}" / f"{ref.hex()}.json"

    def get(self, chain_id: int, vault: str, agent: str, ref: bytes) -> dict[str, Any] | None:
        """The journaled entry, or None."""
        path = self._path(chain_id, vault, agent, ref)
        if not path.is_file():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        return data

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
