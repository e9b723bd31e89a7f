"""The factory (deterministic clones) and the indexed event fields auditors filter on."""

from __future__ import annotations

from web3 import Web3

from tests.contracts.conftest import (
    DAY,
    ETH,
    MAX_OPEN,
    REQUEST_EXPIRY,
    USDC,
    Env,
    expect_revert,
    fresh_address,
    ref,
)


def _topic_address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def _topic_uint(value: int) -> bytes:
    return value.to_bytes(32, "big")


def test_predicted_vault_address_is_the_created_one(env: Env) -> None:
    owners = [env.owners[0].address, env.spare[0].address]
    args = (owners, 1, DAY, 3, ref("predict"))
    predicted = env.factory.functions.predictVaultAddress(*args).call()
    assert env.w3.eth.get_code(predicted) == b""
    receipt = env.send(env.factory.functions.createVault(*args), env.outsider)
    created = env.event(receipt, "VaultCreated", env.factory)
    assert {**created, "owners": list(created["owners"])} == {
        "vault": predicted,
        "creator": env.outsider.address,
        "owners": owners,
        "threshold": 1,
        "requestExpiry": DAY,
        "maxOpenRequests": 3,
        "salt": ref("predict"),
    }
    vault = env.contract("AgentVault", predicted)
    assert list(vault.functions.getOwners().call()) == owners
    assert vault.functions.threshold().call() == 1
    assert vault.functions.maxOpenRequests().call() == 3
    # the vault's own events name the request 0 for its initial configuration
    added = env.events(receipt, "OwnerAdded", vault)
    assert [(e["owner"], e["requestId"]) for e in added] == [(o, 0) for o in reversed(owners)]
    # different settings, same salt: a different address (no squatting with other owners)
    other = env.factory.functions.predictVaultAddress(owners, 2, DAY, 3, ref("predict")).call()
    assert other != predicted


def test_same_parameters_and_salt_twice_revert(env: Env) -> None:
    owners = [o.address for o in env.owners]
    fn = env.factory.functions.createVault(owners, 2, REQUEST_EXPIRY, MAX_OPEN, ref("main"))
    # the session vault was created with exactly these parameters
    assert (
        env.factory.functions.predictVaultAddress(
            owners, 2, REQUEST_EXPIRY, MAX_OPEN, ref("main")
        ).call()
        == env.vault.address
    )
    with expect_revert("FailedDeployment"):
        env.send(fn, env.outsider)


def test_factory_rejects_invalid_vault_settings(env: Env) -> None:
    f = env.factory.functions
    owner = env.owners[0].address
    with expect_revert("InvalidThreshold", 2, 1):
        env.send(f.createVault([owner], 2, DAY, 5, ref("a")), env.outsider)
    with expect_revert("AlreadyOwner", owner):
        env.send(f.createVault([owner, owner], 1, DAY, 5, ref("b")), env.outsider)
    with expect_revert("ZeroAddress"):
        env.send(f.createVault([owner, "0x" + "00" * 20], 1, DAY, 5, ref("c")), env.outsider)
    with expect_revert("InvalidRequestExpiry", 59):
        env.send(f.createVault([owner], 1, 59, 5, ref("d")), env.outsider)
    with expect_revert("InvalidMaxOpenRequests", 0):
        env.send(f.createVault([owner], 1, DAY, 0, ref("e")), env.outsider)
    many = [fresh_address(f"owner-{i}") for i in range(21)]
    with expect_revert("TooManyOwners", 21, 20):
        env.send(f.createVault(many, 1, DAY, 5, ref("f")), env.outsider)


def test_events_index_agent_token_recipient_and_request_id(env: Env) -> None:
    agent = env.agent.address
    usdc = env.usdc.address
    to = fresh_address("audited")
    receipt, _ = env.pay(usdc, to, 10 * USDC, ref("direct"))
    assert env.topics(receipt, "PaymentExecuted")[1:] == [
        _topic_address(agent),
        _topic_address(usdc),
        _topic_address(to),
    ]
    receipt, rid = env.pay(ETH, to, 2 * 10**18, ref("escalated"))
    assert env.topics(receipt, "RequestCreated")[1:] == [
        _topic_uint(rid),
        _topic_address(agent),
        _topic_address(ETH),
    ]
    receipt = env.send(env.vault.functions.approve(rid), env.owners[0])
    assert env.topics(receipt, "RequestApproved")[1:] == [
        _topic_uint(rid),
        _topic_address(env.owners[0].address),
    ]
    receipt = env.send(env.vault.functions.approve(rid), env.owners[1])
    assert env.topics(receipt, "RequestExecuted")[1:] == [
        _topic_uint(rid),
        _topic_address(env.owners[1].address),
    ]
    assert env.topics(receipt, "PaymentExecuted")[1:] == [
        _topic_address(agent),
        _topic_address(ETH),
        _topic_address(to),
    ]
    assert env.event(receipt, "PaymentExecuted")["requestId"] == rid
    rid2 = env.escalate()
    receipt = env.send(env.vault.functions.reject(rid2), env.owners[2])
    assert env.topics(receipt, "RequestRejected")[1:] == [
        _topic_uint(rid2),
        _topic_address(env.owners[2].address),
    ]
    rid3 = env.escalate()
    receipt = env.send(env.vault.functions.cancel(rid3), env.agent)
    assert env.topics(receipt, "RequestCancelled")[1:] == [_topic_uint(rid3), _topic_address(agent)]
    receipt, gid = env.govern("setLimits", agent, usdc, USDC, USDC, DAY)
    assert env.topics(receipt, "LimitsChanged")[1:] == [_topic_address(agent), _topic_address(usdc)]
    assert env.event(receipt, "LimitsChanged")["requestId"] == gid
    receipt, gid = env.govern("allowRecipient", agent, to)
    assert env.topics(receipt, "RecipientChanged")[1:] == [
        _topic_address(agent),
        _topic_address(to),
    ]
    receipt, gid = env.govern("addAgent", env.spare[3].address, 0, 0, True)
    assert env.topics(receipt, "AgentConfigured")[1:] == [
        _topic_address(env.spare[3].address),
        _topic_uint(gid),
    ]
    receipt = env.send(env.vault.functions.pauseAgent(agent), env.owners[0])
    assert env.topics(receipt, "AgentStatusChanged")[1:] == [
        _topic_address(agent),
        _topic_address(env.owners[0].address),
    ]
    receipt, gid = env.govern("changeThreshold", 3)
    assert env.topics(receipt, "ThresholdChanged")[1:] == [_topic_uint(gid)]
    receipt = env.send_eth(env.outsider, env.vault.address, 1)
    assert env.topics(receipt, "Deposited")[1:] == [
        _topic_address(env.outsider.address),
        _topic_address(ETH),
    ]
    assert env.topics(receipt, "Deposited")[0] == Web3.keccak(
        text="Deposited(address,address,uint256)"
    )
