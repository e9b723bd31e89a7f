"""A damaged audit index (header, pages in the middle, truncation, a wrong schema, an old
version) reports one clear line naming the fix, from the CLI run as a separate process, never a
``sqlite3.DatabaseError`` traceback; ``audit sync --rebuild`` moves it aside and rebuilds it."""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from agentwallet.audit.errors import AuditIndexDamagedError, AuditIndexError
from agentwallet.audit.index import AuditIndex
from tests.audit._helpers import ETH, World


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTWALLET_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "agentwallet", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, output
    assert "Traceback" not in output and "sqlite3." not in output, output
    assert len(output.splitlines()) == 1, output
    return output


@pytest.fixture(scope="module")
def healthy(embedded_world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index of the embedded vault with 20,000 more events (many pages)."""
    world = embedded_world
    world.pay(world.agent, ETH, world.payees[0], 10**15, b"inv-1")
    path = tmp_path_factory.mktemp("damage") / "healthy.sqlite"
    with AuditIndex(path) as index:
        index.sync(world.chain, [world.vault.address])
        payment = next(e for e in index.events(world.chain.chain_id) if e.name == "PaymentExecuted")
        index.insert_events(
            world.chain.chain_id,
            [
                dataclasses.replace(payment, block_number=10_000 + i // 20, log_index=i % 20)
                for i in range(20_000)
            ],
        )
    return path


def _pages(path: Path) -> tuple[int, int]:
    size = 4096
    return size, path.stat().st_size // size


def damage_header(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"\xff" * 100)


def damage_middle_random(path: Path) -> None:
    size, pages = _pages(path)
    rng = random.Random(7)
    with path.open("r+b") as f:
        for page in range(pages * 2 // 5, pages * 3 // 5):
            f.seek(page * size)
            f.write(rng.randbytes(size))


def damage_middle_zeros(path: Path) -> None:
    size, pages = _pages(path)
    with path.open("r+b") as f:
        f.seek(pages // 2 * size)
        f.write(bytes(size * 8))


def truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def wrong_schema(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE events RENAME COLUMN ref TO reference")
    db.commit()
    db.close()


def old_version(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '2' WHERE key = 'version'")
    db.commit()
    db.close()


DAMAGES: dict[str, Callable[[Path], None]] = {
    "header": damage_header,
    "middle-random": damage_middle_random,
    "middle-zeros": damage_middle_zeros,
    "truncated": truncate,
    "wrong-schema": wrong_schema,
    "old-version": old_version,
}


@pytest.mark.parametrize("how", list(DAMAGES))
def test_a_damaged_index_reports_one_line_with_the_fix(
    how: str, healthy: Path, embedded_world: World, tmp_path: Path
) -> None:
    path = tmp_path / f"{how}.sqlite"
    shutil.copy(healthy, path)
    DAMAGES[how](path)
    vault, agent = embedded_world.vault.address, embedded_world.agent.address
    common = ["--vault", vault, "--db", str(path)]
    line = one_clear_line(run_cli(tmp_path, "audit", "summary", *common))
    assert "agentwallet audit sync --rebuild" in line and str(path) in line
    # the same index through the Python API: a typed error, never sqlite3's
    with pytest.raises(AuditIndexDamagedError, match="--rebuild"):
        with AuditIndex(path) as index:
            index.events(embedded_world.chain.chain_id)
    trail = run_cli(tmp_path, "audit", "trail", *common, "--agent", agent)
    if trail.returncode:  # a trail that met the damaged pages
        assert "--rebuild" in one_clear_line(trail)
    assert path.exists()  # nothing was deleted


def test_rebuild_moves_the_damaged_index_aside_and_reads_the_chain_again(
    anvil_world: World, tmp_path: Path
) -> None:
    chain, vault = anvil_world.chain, anvil_world.vault.address
    anvil_world.pay(anvil_world.agent, ETH, anvil_world.payees[1], 10**15, b"inv-2")
    path = tmp_path / "audit.sqlite"
    rpc = ["--rpc", str(chain.url)]
    assert (
        run_cli(tmp_path, *rpc, "audit", "sync", "--vault", vault, "--db", str(path)).returncode
        == 0
    )
    damage_header(path)
    assert "--rebuild" in one_clear_line(
        run_cli(tmp_path, *rpc, "audit", "sync", "--vault", vault, "--db", str(path))
    )
    rebuilt = run_cli(
        tmp_path, *rpc, "audit", "sync", "--vault", vault, "--db", str(path), "--rebuild"
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "moved the old index to" in rebuilt.stdout
    kept = list(tmp_path.glob("audit.sqlite.damaged-*"))
    assert len(kept) == 1 and kept[0].read_bytes()[:100] == b"\xff" * 100
    summary = run_cli(tmp_path, "audit", "summary", "--vault", vault, "--db", str(path))
    assert summary.returncode == 0 and "threshold: 2" in summary.stdout, summary.stderr
    # another application's SQLite file is refused, never moved
    foreign = tmp_path / "foreign.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.commit()
    db.close()
    refused = run_cli(
        tmp_path, *rpc, "audit", "sync", "--vault", vault, "--db", str(foreign), "--rebuild"
    )
    assert "not an agentwallet audit index" in one_clear_line(refused)
    assert foreign.exists() and not list(tmp_path.glob("foreign.sqlite.damaged-*"))
    with pytest.raises(AuditIndexError, match="not an agentwallet audit index"):
        AuditIndex(foreign)
