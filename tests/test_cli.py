from __future__ import annotations

import json

from click.testing import CliRunner

from agentwallet.cli import main


def test_chain_command_reports_the_embedded_chain_as_json() -> None:
    result = CliRunner().invoke(main, ["--rpc", "embedded", "--json", "chain"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["development"] is True and data["url"] == "embedded"


def test_expected_errors_are_one_line_without_traceback() -> None:
    result = CliRunner().invoke(main, ["--rpc", "http://127.0.0.1:9", "chain"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no JSON-RPC node answered at http://127.0.0.1:9")
    assert "Traceback" not in result.output + result.stderr
