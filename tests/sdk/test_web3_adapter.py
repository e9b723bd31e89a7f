"""The two places the client needed web3.py internals: the pinned chain-id check (now on web3's
public middleware API) and the batched receipt poll (``agentwallet.chain.web3_private``, the one
module that still imports a private web3 name, checked here against the installed web3)."""

from __future__ import annotations

from typing import Any

import pytest
from web3.exceptions import ExtraDataLengthError, Web3ValidationError

from agentwallet.chain import Chain, web3_private
from agentwallet.chain.caching import PinnedChainIdValidation
from agentwallet.chain.receipts import ReceiptWaiter

from .test_hotpath import counting


def test_the_web3_internals_the_adapter_uses_are_there() -> None:
    """Fails on a web3 release that dropped them, naming the version (the SDK still works:
    receipts one by one)."""
    gone = web3_private.missing()
    assert not gone, f"web3 {web3_private.WEB3_VERSION} no longer has {gone}: port web3_private"


def test_a_gone_internal_is_named_with_the_web3_version_and_receipts_still_come(
    anvil_chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = anvil_chain.dev_accounts[0]
    mined = bytes(anvil_chain.w3.eth.send_transaction({"from": a.address, "to": a.address}))
    monkeypatch.setattr(web3_private, "_receipt_formatter", None)
    with pytest.raises(web3_private.PrivateWeb3Error) as info:
        web3_private.require(anvil_chain.w3)
    assert f"web3 {web3_private.WEB3_VERSION} no longer has" in str(info.value)
    assert "receipt_formatter" in str(info.value)
    assert web3_private.batch_receipts(anvil_chain.w3, [mined, b"\x11" * 32]) is None
    found = ReceiptWaiter(anvil_chain).fetch([mined, b"\x11" * 32])  # one by one instead
    assert list(found) == [mined] and found[mined]["status"] == 1


def test_a_batched_receipt_is_the_receipt_web3_gives(anvil_chain: Chain) -> None:
    w3 = anvil_chain.w3
    a = anvil_chain.dev_accounts[0]
    mined = [bytes(w3.eth.send_transaction({"from": a.address, "to": a.address, "value": v}))
             for v in (1, 2)]  # fmt: skip
    web3_private.require(w3)
    with counting(anvil_chain) as counts:
        found = web3_private.batch_receipts(w3, [*mined, b"\x22" * 32])
    assert found is not None and sorted(found) == sorted(mined)  # the unknown one is left out
    assert sum(counts.values()) == 0  # one batch (the counter sees single requests only)
    for tx_hash in mined:
        assert found[tx_hash] == w3.eth.get_transaction_receipt(tx_hash)


def test_the_pinned_chain_id_check_refuses_another_chain_without_asking_the_node(
    any_chain: Chain,
) -> None:
    w3, chain_id = any_chain.w3, any_chain.chain_id
    a = any_chain.dev_accounts[0]
    call: dict[str, Any] = {"from": a.address, "to": a.address, "value": 0}
    with counting(any_chain) as counts:
        assert w3.eth.call({**call, "chainId": chain_id}) == b""  # type: ignore[typeddict-item]
        assert w3.eth.estimate_gas({**call, "chainId": chain_id}) == 21_000  # type: ignore[typeddict-item]
        for wrong in (chain_id + 1, hex(chain_id + 1)):
            with pytest.raises(Web3ValidationError, match=f"on {chain_id}"):
                w3.eth.call({**call, "chainId": wrong})  # type: ignore[typeddict-item]
    if not any_chain.is_embedded:
        assert counts["eth_chainId"] == 0
        assert "validation" in {name for _, name in w3.middleware_onion.middleware}


def test_a_block_with_poa_extra_data_is_refused_as_web3_does(chain: Chain) -> None:
    check = PinnedChainIdValidation(chain.w3)
    ok: Any = {"result": {"number": "0x1", "extraData": "0x" + "ab" * 32}}
    assert check.response_processor("eth_getBlockByNumber", ok) == ok  # type: ignore[arg-type]
    poa: Any = {"result": {"number": "0x1", "extraData": "0x" + "ab" * 97}}
    with pytest.raises(ExtraDataLengthError, match="97 bytes"):
        check.response_processor("eth_getBlockByHash", poa)  # type: ignore[arg-type]
    assert check.response_processor("eth_getBalance", poa) == poa  # type: ignore[arg-type]
