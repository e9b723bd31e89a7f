"""A damaged audit index reports one typed error that says what to do.

SQLite failures (a header that is not SQLite's, a truncated file, corrupt pages met while
reading, a wrong schema, rows that no longer decode) become :class:`AuditIndexDamagedError`,
whose fix is ``agentwallet audit sync --rebuild`` (the damaged file is moved aside, never
deleted, and the index is rebuilt from the chain); a locked, read-only or full disk gets its own
:class:`AuditIndexError`.
"""

from __future__ import annotations

import functools
import sqlite3
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from agentwallet.audit.errors import AuditIndexDamagedError, AuditIndexError
from agentwallet.audit.schema import SCHEMA

if TYPE_CHECKING:
    from agentwallet.audit.index import AuditIndex

__all__ = ["classify", "damaged", "expected_columns", "guarded", "has_sqlite_header", "move_aside"]

P = ParamSpec("P")
R = TypeVar("R")


def damaged(path: Path, detail: str) -> AuditIndexDamagedError:
    return AuditIndexDamagedError(
        f"audit index {path} is damaged ({detail}): run `agentwallet audit sync --rebuild "
        "--vault VAULT` (it moves the damaged file aside and rebuilds the index from the chain)"
    )


def classify(path: Path, exc: BaseException) -> AuditIndexError:
    """A typed error for an SQLite failure: damage, or what to do."""
    text = str(exc)
    lowered = text.lower()
    if "locked" in lowered or "busy" in lowered:
        return AuditIndexError(
            f"audit index {path} is locked by another process (a sync or watch?): wait for it "
            "to finish, then retry"
        )
    if "disk is full" in lowered or "disk i/o" in lowered:
        return AuditIndexError(
            f"audit index {path} could not be written ({text}): free disk space or pass "
            "another --db; the last committed sync batch is kept"
        )
    if "readonly" in lowered or "unable to open" in lowered:
        return AuditIndexError(
            f"audit index {path} cannot be opened for writing ({text}): check the file's and "
            "folder's permissions, or pass another --db"
        )
    return damaged(path, text or type(exc).__name__)


def guarded(
    method: Callable[Concatenate[AuditIndex, P], R],
) -> Callable[Concatenate[AuditIndex, P], R]:
    """An :class:`AuditIndex` method whose SQLite failures become :func:`classify`'s error."""

    @functools.wraps(method)
    def wrapper(self: AuditIndex, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise classify(self.path, exc) from None

    return wrapper


@cache
def expected_columns() -> dict[str, tuple[str, ...]]:
    """Each table's columns, as the schema creates them."""
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: tuple(r[1] for r in db.execute(f"PRAGMA table_info({t})")) for t in tables}
    finally:
        db.close()


def has_sqlite_header(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def move_aside(path: Path) -> Path | None:
    """Rename an index file (and its -wal/-shm) to ``NAME.damaged-TIMESTAMP``, keeping it for
    inspection; returns the new name (None when there was no file)."""
    if not path.exists():
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    path.rename(target)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            extra.rename(target.with_name(target.name + suffix))
    return target
