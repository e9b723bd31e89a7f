from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from agentwallet.chain import connect
from agentwallet.chain.node import find_anvil, free_port, rpc_chain_id, start_anvil
from agentwallet.errors import ChainConnectionError, NodeNotFoundError


@pytest.mark.anvil
def test_anvil_state_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "node-state.json"
    receiver = Account.create().address
    port = free_port()
    with start_anvil(port=port, state=state) as node:
        chain = connect(node.url)
        chain.send_transaction(chain.dev_accounts[0], {"to": receiver, "value": 12345})
    assert state.is_file()
    with start_anvil(port=port, state=state) as node:
        assert connect(node.url).w3.eth.get_balance(receiver) == 12345


@pytest.mark.anvil
def test_start_anvil_refuses_a_busy_port() -> None:
    with start_anvil(port=free_port()) as node:
        with pytest.raises(ChainConnectionError, match="already answers"):
            start_anvil(port=node.port)


def test_anvil_override_must_be_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTWALLET_ANVIL", str(tmp_path / "missing-anvil"))
    with pytest.raises(NodeNotFoundError, match="AGENTWALLET_ANVIL"):
        find_anvil()


# --------------------------------------------------------------- `agentwallet node` as a process

#: Anvil's first development account's private key: printed in anvil's banner.
DEV_KEY_0 = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@dataclass
class NodeRun:
    process: subprocess.Popen[str]
    anvil_pid: int
    port: int
    first_line: str


def _start_node_command(home: Path, *extra: str) -> NodeRun:
    port = free_port()
    env = {**os.environ, "AGENTWALLET_HOME": str(home)}
    env.pop("AGENTWALLET_RPC", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "agentwallet", "node", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stderr is not None
    first = process.stderr.readline()
    match = re.search(r"anvil \(pid (\d+)\) listening on http://127\.0\.0\.1:(\d+)", first)
    if match is None:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"node did not start: {first!r} {out!r} {err!r}")
    assert int(match.group(2)) == port
    assert rpc_chain_id(f"http://127.0.0.1:{port}") == 31337
    return NodeRun(process, int(match.group(1)), port, first)


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # a zombie no one has reaped yet serves nothing


def _port_free(port: int) -> bool:
    """Nobody listens on ``port`` and a new node could bind it (SO_REUSEADDR, as servers do:
    our own finished RPC connections may linger in TIME_WAIT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            s.listen()
        except OSError:
            return False
    return True


def _wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.anvil
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_node_command_stops_anvil_on_each_stop_signal(tmp_path: Path, signum: int) -> None:
    """`kill`, the terminal closing and Ctrl-C all stop anvil, free the port and leave the
    state written; the terminal never shows anvil's banner with the private keys."""
    run = _start_node_command(tmp_path)
    run.process.send_signal(signum)
    out, err = run.process.communicate(timeout=30)
    assert run.process.returncode == 0, err
    assert "anvil stopped" in err
    assert _wait_until(lambda: _gone(run.anvil_pid)), f"anvil {run.anvil_pid} still running"
    assert _wait_until(lambda: _port_free(run.port))
    assert rpc_chain_id(f"http://127.0.0.1:{run.port}", timeout=0.5) is None
    assert (tmp_path / "node-state.json").is_file()
    terminal = run.first_line + out + err
    assert DEV_KEY_0 not in terminal.lower() and "Private Keys" not in terminal
    log = tmp_path / "node.log"
    assert f"output in {log}" in run.first_line
    assert DEV_KEY_0 in log.read_text().lower()  # the banner went to the log ...
    assert stat.S_IMODE(log.stat().st_mode) == 0o600  # ... which only its owner can read


@pytest.mark.anvil
def test_node_command_killed_outright_takes_anvil_with_it(tmp_path: Path) -> None:
    """SIGKILL cannot be caught: the kernel stops anvil when its parent dies."""
    run = _start_node_command(tmp_path)
    run.process.kill()
    run.process.communicate(timeout=30)
    assert _wait_until(lambda: _gone(run.anvil_pid)), f"anvil {run.anvil_pid} still running"
    assert _wait_until(lambda: _port_free(run.port))


@pytest.mark.anvil
def test_node_command_verbose_shows_anvil_output_and_writes_no_log(tmp_path: Path) -> None:
    run = _start_node_command(tmp_path, "--verbose")
    assert "output in" not in run.first_line
    run.process.send_signal(signal.SIGTERM)
    out, err = run.process.communicate(timeout=30)
    assert run.process.returncode == 0, err
    assert DEV_KEY_0 in (out + err).lower()
    assert not (tmp_path / "node.log").exists()
    assert _wait_until(lambda: _gone(run.anvil_pid))


@pytest.mark.anvil
def test_node_command_log_option_picks_the_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "anvil.txt"
    log.parent.mkdir()
    log.write_text("old run\n")
    log.chmod(0o644)
    run = _start_node_command(tmp_path, "--log", str(log))
    run.process.send_signal(signal.SIGTERM)
    run.process.communicate(timeout=30)
    text = log.read_text()
    assert "old run" not in text and DEV_KEY_0 in text.lower()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert not (tmp_path / "node.log").exists()


def test_start_anvil_failure_points_at_the_log(tmp_path: Path) -> None:
    """A node that cannot start says where its output went (the log), not "run it by hand"."""
    state = tmp_path / "state.json"
    state.write_text("this is not a state file")
    log = tmp_path / "node.log"
    with pytest.raises(NodeNotFoundError, match=rf"exited with code \d+ on start: see {log}"):
        start_anvil(port=free_port(), state=state, log=log)
    assert log.read_text()
