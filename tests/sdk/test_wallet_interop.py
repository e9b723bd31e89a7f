"""Typed data for any wallet: the ``eth_signTypedData_v4`` JSON the SDK gives is signed by an
implementation we did not write (anvil's own RPC, for its unlocked dev accounts, which own the
vault) and the raw signatures run a payment request, a call request, an owners' signed payment
and a governance batch, also for an ERC-1271 contract owner (a Safe stands in)."""

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from agentwallet.chain import Chain
from agentwallet.errors import AgentWalletError, SignatureMismatchError
from agentwallet.protocol import typed_data
from agentwallet.protocol.models import SignedApproval, SignedGovernance, SignedPayment
from agentwallet.vault import Vault

from .conftest import USDC, World, build_world


@pytest.fixture
def aworld(anvil_chain: Chain, tmp_path: Path) -> World:
    """A world on anvil built inside the test, so it is reverted with it: the shared anvil keeps
    no extra vault for other modules' chain-wide reads (the audit's filters)."""
    return build_world(anvil_chain, tmp_path)


def wallet_sign(chain: Chain, account: str, typed: dict[str, Any]) -> str:
    """anvil's eth_signTypedData_v4 for one of its unlocked dev accounts."""
    response = chain.w3.provider.make_request(
        "eth_signTypedData_v4",  # type: ignore[arg-type]
        [account, json.dumps(typed)],
    )
    assert "error" not in response, response
    return str(response["result"])


def _is_v4_json(typed: dict[str, Any]) -> None:
    """Standard form: EIP712Domain in types, hex strings and decimal strings only."""
    assert set(typed) == {"types", "domain", "primaryType", "message"}
    assert "EIP712Domain" in typed["types"] and typed["primaryType"] in typed["types"]
    json.dumps(typed)  # plain JSON, nothing else

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        else:
            assert isinstance(value, str | bool), value

    walk(typed["message"])


def test_wallet_json_hashes_as_the_vault_does(aworld: World) -> None:
    v = aworld.vault
    calls = [v.governance_call("setMaxOpenRequests", 4)]
    batch, nonce, deadline = v.governance_draft(calls)
    typed = v.governance_typed_data(batch, nonce, deadline, wallet=True)
    _is_v4_json(typed)
    assert typed_data.digest(typed) == v.governance_digest(batch, nonce, deadline)
    assert typed["domain"]["verifyingContract"] == v.address


def test_anvil_signs_a_payment_request_and_a_call_request(aworld: World) -> None:
    chain, v, (o0, o1, _) = aworld.chain, aworld.vault, aworld.owners
    agent = aworld.agent
    # a payment request over the agent's limit
    receipt = chain.transact(
        v.contract.functions.pay(v.token("tUSDC").address, aworld.payee, 200 * USDC, b"\0" * 32),
        agent,
    )
    (request,) = v.bindings.created_requests(receipt)
    typed = v.typed_data(request.id, wallet=True)
    _is_v4_json(typed)
    assert typed["primaryType"] == "PaymentRequest"
    approvals = [v.signature_from_wallet(typed, o.address, wallet_sign(chain, o.address, typed))
                 for o in (o1, o0)]  # fmt: skip
    assert all(isinstance(a, SignedApproval) for a in approvals)
    before = v.balance("tUSDC")
    v.execute_with_signatures(aworld.outsider, request.id, approvals)  # type: ignore[arg-type]
    assert v.balance("tUSDC") == before - 200 * USDC
    # a call request: a scoped call the agent holds no grant for
    shop = chain.deploy("Marketplace", aworld.payee, sender=o0)
    data = shop.encode_abi("buy", args=[v.token("tUSDC").address, 10 * USDC])
    receipt = chain.transact(
        v.contract.functions.scopedCall(
            shop.address, 0, data, v.token("tUSDC").address, 10 * USDC, b"\0" * 32
        ),
        agent,
    )
    (call,) = v.bindings.created_requests(receipt)
    typed = v.typed_data(call.id, wallet=True)
    _is_v4_json(typed)
    assert typed["primaryType"] == "CallRequest" and typed["message"]["data"] == data
    approvals = [v.signature_from_wallet(typed, o.address, wallet_sign(chain, o.address, typed))
                 for o in (o0, o1)]  # fmt: skip
    v.execute_with_signatures(aworld.outsider, call.id, approvals)  # type: ignore[arg-type]
    assert v.request(call.id).status == "executed"
    assert v.balance("tUSDC") == before - 210 * USDC


def test_anvil_signs_an_owners_payment_and_a_governance_batch(aworld: World) -> None:
    chain, v, (o0, o1, o2) = aworld.chain, aworld.vault, aworld.owners
    token = v.token("tUSDC").address
    deadline = chain.timestamp() + 3600
    nonce = v.payment_nonce(o0.address, token, aworld.payee, 5 * USDC, b"\0" * 32, deadline)
    typed = v.payment_typed_data(
        o0.address, token, aworld.payee, 5 * USDC, b"\0" * 32, nonce, deadline, wallet=True
    )
    _is_v4_json(typed)
    signed = [v.signature_from_wallet(typed, o.address, wallet_sign(chain, o.address, typed))
              for o in (o0, o2)]  # fmt: skip
    assert all(isinstance(s, SignedPayment) for s in signed)
    before = v.balance("tUSDC")
    v.pay_with_signatures(aworld.outsider, signed)  # type: ignore[arg-type]
    assert v.balance("tUSDC") == before - 5 * USDC
    # a governance batch: one wallet signature beside one SDK signature
    calls = [v.governance_call("setMaxOpenRequests", 3)]
    mine = v.sign_governance(o1, calls)
    typed = v.governance_typed_data(mine.call_data(), mine.nonce, mine.deadline, wallet=True)
    theirs = v.signature_from_wallet(typed, o2.address, wallet_sign(chain, o2.address, typed))
    assert isinstance(theirs, SignedGovernance) and theirs.batch() == mine.batch()
    # a wallet signature claimed for the wrong owner is caught before sending
    wrong = v.signature_from_wallet(typed, o0.address, wallet_sign(chain, o2.address, typed))
    with pytest.raises(SignatureMismatchError):
        v.execute_governance(aworld.outsider, [mine, wrong])  # type: ignore[list-item]
    v.execute_governance(aworld.outsider, [mine, theirs])  # type: ignore[list-item]
    assert v.contract.functions.maxOpenRequests().call() == 3


def test_a_contract_owner_signs_through_its_erc1271_wallet(aworld: World) -> None:
    """A Safe-like owner: the vault asks the owner contract's isValidSignature; its bytes come
    from a wallet (here its EOA signer, anvil dev account 3, signing the typed data)."""
    chain, (o0, _, _) = aworld.chain, aworld.owners
    eoa = chain.dev_accounts[3]
    safe = chain.deploy("ERC1271Owner", eoa.address, sender=o0)
    v = Vault.create(chain, o0, [o0.address, safe.address], 2, name="with-safe",
                     deployments=aworld.deployments)  # fmt: skip
    calls = [v.governance_call("setMaxOpenRequests", 2)]
    batch, nonce, deadline = v.governance_draft(calls)
    typed = v.governance_typed_data(batch, nonce, deadline, wallet=True)
    by_safe = v.signature_from_wallet(typed, safe.address, wallet_sign(chain, eoa.address, typed))
    assert isinstance(by_safe, SignedGovernance) and by_safe.contract
    by_o0 = v.signature_from_wallet(typed, o0.address, wallet_sign(chain, o0.address, typed))
    v.execute_governance(aworld.outsider, [by_o0, by_safe])  # type: ignore[list-item]
    assert v.contract.functions.maxOpenRequests().call() == 2


def test_typed_data_of_another_vault_or_kind_is_refused(aworld: World) -> None:
    v = aworld.vault
    calls = [v.governance_call("setMaxOpenRequests", 4)]
    batch, nonce, deadline = v.governance_draft(calls)
    typed = v.governance_typed_data(batch, nonce, deadline, wallet=True)
    signature = Account.create().unsafe_sign_hash(typed_data.digest(typed)).signature.to_0x_hex()
    other = {**typed, "domain": {**typed["domain"], "chainId": 1}}
    with pytest.raises(AgentWalletError, match="on chain 1, not"):
        v.signature_from_wallet(other, aworld.owners[0].address, signature)
    with pytest.raises(AgentWalletError, match="primaryType 'Mail'"):
        v.signature_from_wallet({**typed, "primaryType": "Mail"}, aworld.owners[0].address, "0x")
    with pytest.raises(AgentWalletError, match="not eth_signTypedData_v4"):
        v.signature_from_wallet({"message": {}}, aworld.owners[0].address, signature)
    with pytest.raises(AgentWalletError, match="not 0x hex"):
        v.signature_from_wallet(typed, aworld.owners[0].address, "signed!")
