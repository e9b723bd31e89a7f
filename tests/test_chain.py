from __future__ import annotations

import time
from typing import Any

import pytest
from eth_abi import abi
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from agentwallet.chain import Chain, connect
from agentwallet.errors import (
    ChainConnectionError,
    NotADevelopmentChainError,
    SnapshotError,
)

ETHER = 10**18


def test_dev_accounts_are_funded_and_shared_by_both_chains(any_chain: Chain) -> None:
    accounts = any_chain.dev_accounts
    assert len(accounts) == 10
    assert accounts[0].address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert all(any_chain.w3.eth.get_balance(a.address) >= 1000 * ETHER for a in accounts)
    assert any_chain.is_development


def test_send_transaction_transfers_value(any_chain: Chain) -> None:
    sender, receiver = any_chain.dev_accounts[0], Account.create()
    receipt = any_chain.send_transaction(sender, {"to": receiver.address, "value": 3 * ETHER})
    assert receipt["status"] == 1
    assert any_chain.w3.eth.get_balance(receiver.address) == 3 * ETHER


def test_revert_restores_balance(any_chain: Chain) -> None:
    sender, receiver = any_chain.dev_accounts[1], Account.create()
    snapshot = any_chain.snapshot()
    any_chain.send_transaction(sender, {"to": receiver.address, "value": ETHER})
    assert any_chain.w3.eth.get_balance(receiver.address) == ETHER
    any_chain.revert(snapshot)
    assert any_chain.w3.eth.get_balance(receiver.address) == 0


def test_revert_consumes_the_snapshot_and_later_ones(any_chain: Chain) -> None:
    first = any_chain.snapshot()
    later = any_chain.snapshot()
    any_chain.revert(first)
    with pytest.raises(SnapshotError):
        any_chain.revert(first)
    with pytest.raises(SnapshotError):
        any_chain.revert(later)


def test_increase_time_moves_the_timestamp_and_revert_moves_it_back(any_chain: Chain) -> None:
    start = any_chain.timestamp()
    snapshot = any_chain.snapshot()
    moved = any_chain.increase_time(86_400)
    assert moved == any_chain.timestamp()
    assert start + 86_400 <= moved <= start + 86_400 + 5
    any_chain.revert(snapshot)
    assert any_chain.timestamp() == start


def test_mine_adds_blocks(any_chain: Chain) -> None:
    before = any_chain.block_number()
    any_chain.mine(3)
    assert any_chain.block_number() == before + 3


def test_deploy_and_transact(any_chain: Chain, probe_artifact: dict[str, Any]) -> None:
    probe = any_chain.deploy(probe_artifact, 7)
    assert probe.functions.stored().call() == 7
    receipt = any_chain.transact(probe.functions.store(9), any_chain.dev_accounts[2])
    assert receipt["status"] == 1
    assert probe.functions.stored().call() == 9
    (event,) = probe.events.Stored().process_receipt(receipt)
    assert event["args"]["by"] == any_chain.dev_accounts[2].address


def test_reverts_raise_the_same_web3_errors_on_both_chains(
    any_chain: Chain, probe_artifact: dict[str, Any]
) -> None:
    probe = any_chain.deploy(probe_artifact, 7)
    sender = any_chain.dev_accounts[3]
    selector = Web3.keccak(text="TooBig(uint256,uint256)")[:4]
    too_big = "0x" + (selector + abi.encode(["uint256", "uint256"], [101, 100])).hex()
    # custom error: raised at gas estimation (nothing is sent) and by eth_call, with .data
    with pytest.raises(ContractCustomError) as info:
        any_chain.transact(probe.functions.store(101), sender)
    assert info.value.data == too_big
    with pytest.raises(ContractCustomError) as info:
        probe.functions.store(101).call({"from": sender.address})
    assert info.value.data == too_big
    # require(..., "reason")
    with pytest.raises(ContractLogicError, match="execution reverted: no answers"):
        any_chain.transact(probe.functions.store(42), sender)
    # panic (division by zero)
    with pytest.raises(ContractPanicError, match="Division by zero"):
        probe.functions.divide(0).call()


def test_bad_url_raises_chain_connection_error_fast() -> None:
    started = time.monotonic()
    with pytest.raises(ChainConnectionError, match=r"http://127\.0\.0\.1:9.*agentwallet node"):
        connect("http://127.0.0.1:9")
    assert time.monotonic() - started < 5


def test_non_http_url_is_rejected() -> None:
    with pytest.raises(ChainConnectionError, match="http"):
        connect("ws://example.invalid")


def test_non_development_chain_refuses_dev_operations(chain: Chain) -> None:
    production_like = Chain(chain.w3, url="http://mainnet.example")  # not embedded, not anvil
    assert not production_like.is_development
    for operation in (
        production_like.snapshot,
        lambda: production_like.increase_time(1),
        lambda: production_like.revert(1),
        lambda: production_like.dev_accounts,
    ):
        with pytest.raises(NotADevelopmentChainError):
            operation()


def test_private_keys_never_appear_in_reprs(any_chain: Chain) -> None:
    account = any_chain.dev_accounts[0]
    key_hex = account.key.hex().removeprefix("0x")
    for text in (repr(any_chain), str(any_chain), repr(account), str(account)):
        assert key_hex not in text.lower()
    assert key_hex not in repr(any_chain.dev_accounts).lower()
