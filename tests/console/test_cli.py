"""``agentwallet console`` as its own process: it serves the vault given by address on anvil,
and bad input is one ``error:`` line with exit code 1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from agentwallet.chain.node import AnvilProcess, free_port
from tests.console.conftest import escalate
from tests.sdk.conftest import World


def run(args: list[str], home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AGENTWALLET_HOME": str(home), "AGENTWALLET_DEPLOYMENTS": str(home / "d")}
    return subprocess.run(
        [sys.executable, "-m", "agentwallet", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def one_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_console_help_says_how_to_start_it(tmp_path: Path) -> None:
    result = run(["console", "--help"], tmp_path)
    assert result.returncode == 0
    assert "--vault NAME_OR_ADDRESS" in result.stdout and "--port" in result.stdout
    assert "127.0.0.1" in result.stdout


def test_console_with_no_vault_recorded_says_what_to_do(tmp_path: Path) -> None:
    one_error(run(["--rpc", "embedded", "console"], tmp_path), "no vault is recorded", "deploy")


def test_console_on_a_port_in_use_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_error(run(["--rpc", "embedded", "console", "--port", str(port)], tmp_path), "in use")
    one_error(run(["--rpc", "embedded", "console", "--port", "0"], tmp_path), "not a TCP port")


def test_console_with_a_vault_that_is_not_one(tmp_path: Path, anvil_node: AnvilProcess) -> None:
    stranger = "0x000000000000000000000000000000000000dEaD"
    result = run(["--rpc", anvil_node.url, "console", "--vault", stranger], tmp_path)
    one_error(result, stranger)


def test_console_serves_the_vault_until_stopped(
    tmp_path: Path, anvil_node: AnvilProcess, aworld_console: World
) -> None:
    rid = escalate(aworld_console, ref="inv-cli")
    port = free_port()
    vault = aworld_console.vault.address
    env = {**os.environ, "AGENTWALLET_HOME": str(tmp_path)}
    args = ["--rpc", anvil_node.url, "--json", "console", "--vault", vault, "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentwallet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        started = proc.stdout.readline() if proc.stdout else ""
        assert f"http://127.0.0.1:{port}/" in started and vault in started
        url = f"http://127.0.0.1:{port}/vaults/{vault}/requests"
        for _ in range(100):
            try:
                page = httpx.get(url, timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert page.status_code == 200
        assert f'id="request-{rid}"' in page.text and "inv-cli" in page.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
