"""The factory (deterministic clones) and the indexed event fields auditors filter on."""

from __future__ import annotations

from web3 import Web3

from tests.contracts.conftest import (
    DAY,
    ETH,
    MAX_OPEN,
    REQUEST_EXPIRY,
    USDC,
    VAULT_PARTS,
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
    vault = env.contract("IAgentVault", predicted)
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
    assert env.topics(receipt, "PaymentRequested")[1:] == [
        _topic_uint(rid),
        _topic_address(agent),
        _topic_address(ETH),
    ]
    receipt = env.send(env.rq.approve(rid), env.owners[0])
    assert env.topics(receipt, "RequestApproved")[1:] == [
        _topic_uint(rid),
        _topic_address(env.owners[0].address),
    ]
    receipt = env.send(env.rq.approve(rid), env.owners[1])
    assert env.topics(receipt, "RequestExecuted")[1:] == [
        _topic_uint(rid),
        _topic_address(env.owners[1].address),
    ]
    assert env.topics(receipt, "PaymentExecuted")[1:] == [
        _topic_address(agent),
        _topic_address(ETH),
        _topic_address(to),
    ]
    assert env.event(receipt, "RequestExecuted")["requestId"] == rid
    rid2 = env.escalate()
    receipt = env.send(env.rq.reject(rid2), env.owners[2])
    assert env.topics(receipt, "RequestRejected")[1:] == [
        _topic_uint(rid2),
        _topic_address(env.owners[2].address),
    ]
    rid3 = env.escalate()
    receipt = env.send(env.rq.cancel(rid3), env.agent)
    assert env.topics(receipt, "RequestCancelled")[1:] == [_topic_uint(rid3), _topic_address(agent)]
    receipt, gid = env.govern("setLimits", agent, usdc, USDC, USDC, DAY)
    assert env.topics(receipt, "LimitsChanged")[1:] == [_topic_address(agent), _topic_address(usdc)]
    assert env.event(receipt, "LimitsChanged")["requestId"] == gid
    receipt, gid = env.govern("allowRecipient", agent, to)
    assert env.topics(receipt, "RecipientChanged")[1:] == [
        _topic_address(agent),
        _topic_address(to),
    ]
    # AgentConfigured is indexed by agent and lineage (no longer by request id)
    receipt, gid = env.govern("addAgent", env.spare[3].address, 0, 0, True)
    lineage = env.vault.functions.getAgent(env.spare[3].address).call()[5]
    assert lineage == 2  # the env's agent is lineage 1
    assert env.topics(receipt, "AgentConfigured")[1:] == [
        _topic_address(env.spare[3].address),
        _topic_uint(lineage),
    ]
    assert env.event(receipt, "AgentConfigured") == {
        "agent": env.spare[3].address,
        "lineage": lineage,
        "validAfter": 0,
        "validUntil": 0,
        "useAllowlist": True,
        "requestId": gid,
    }
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


def test_the_parts_are_chained_and_run_only_inside_a_vault(env: Env) -> None:
    """Lens -> Calls -> Config -> Admin -> AgentVault core, each pointing at the next; the factory
    clones the core. The admin, config and calls parts refuse any call that is not a delegatecall
    from a vault (their own storage is never a vault's)."""
    parts = env.parts
    assert list(parts) == list(VAULT_PARTS)
    assert env.factory.functions.implementation().call() == parts["AgentVault"]
    for name, address in parts.items():
        assert env.w3.eth.get_code(address) != b"", name
    for name in ("AgentVaultAdmin", "AgentVaultConfig", "AgentVaultCalls"):
        part = env.contract("IAgentVault", parts[name])
        f = part.functions
        calls = {
            "AgentVaultAdmin": [
                f.propose(env.calldata("unpause"), ref("x")),
                f.approveProposal(env.rq.req(1), env.rq.data(1)),
                f.rejectProposal(env.rq.req(1)),
                f.approvePayment(env.rq.req(env.escalate())),
                f.executeGovernance([env.calldata("unpause")], 0, env.now() + DAY, b""),
                f.invalidateNonces(env.outsider.address, 0, 1),
            ],
            "AgentVaultConfig": [
                f.pause(),
                f.revokeAgent(env.agent.address),
                f.removeToken(env.agent.address, ETH),
                f.addAgent(env.outsider.address, 0, 0, False),
                f.setLimits(env.agent.address, ETH, 1, 1, DAY),
                f.changeThreshold(1),
            ],
            "AgentVaultCalls": [
                f.grantCall(
                    env.agent.address, env.outsider.address, b"\x12\x34\x56\x78", 0, 0, DAY
                ),
                f.revokeCall(env.agent.address, env.outsider.address, b"\x12\x34\x56\x78"),
            ],
        }[name]
        for call in calls:
            for sender in (env.owners[0], env.outsider):
                with expect_revert("NotDelegateCall"):
                    env.send(call, sender)
    # the core itself is locked (only clones are initialised) and none of the parts is a vault
    core = env.contract("IAgentVault", parts["AgentVault"])
    with expect_revert("AlreadyInitialized"):
        env.send(core.functions.initialize([env.outsider.address], 1, DAY, 5), env.outsider)


def test_each_part_needs_code_at_the_next_one(env: Env) -> None:
    nowhere = fresh_address("no-code")
    for name in ("AgentVaultCalls", "AgentVaultConfig", "AgentVaultAdmin", "AgentVault"):
        with expect_revert("ZeroAddress"):
            env.deploy(name, nowhere)
    with expect_revert("NotAContract", nowhere):
        env.deploy("AgentVaultFactory", nowhere)


def test_internal_constants_are_not_part_of_the_abi(env: Env) -> None:
    """REASON_* and MAX_* are no longer exposed as getters (the conftest mirrors the values)."""
    names = {entry.get("name", "") for entry in env.vault.abi if entry["type"] == "function"}
    for constant in (
        "REASON_OVER_PER_PAYMENT",
        "REASON_OVER_ALLOWANCE",
        "REASON_RECIPIENT_NOT_ALLOWED",
        "REASON_TOKEN_NOT_IN_SCOPE",
        "MAX_LIMIT",
        "MAX_PERIOD",
        "MAX_AGENTS",
        "MAX_TOKENS_PER_AGENT",
        "MAX_OWNERS",
    ):
        assert constant not in names
    with expect_revert("<empty revert>"):  # no such selector anywhere in the four parts
        env.w3.eth.call(
            {"to": env.vault.address, "data": Web3.keccak(text="MAX_AGENTS()")[:4].hex()}
        )
