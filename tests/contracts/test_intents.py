"""Agent-signed intents (gasless, relayed) and the vault as its own ERC-7710 delegation manager.

Who gains if a rule breaks: a relayer or facilitator (changes what it submits, takes a bigger
fee, replays), another vault or chain (replays a signature), or a stranger (forges an agent)."""

from __future__ import annotations

from typing import Any

from eth_abi import abi as eth_abi
from eth_account import Account
from web3 import Web3
from web3.types import TxReceipt

from .conftest import (
    DAY,
    ETH,
    ETH_MAX,
    ETHER,
    REASON_OVER_PER_PAYMENT,
    USDC,
    USDC_MAX,
    Env,
    expect_revert,
    fresh_address,
    ref,
)

SINGLE_DEFAULT = b"\0" * 32
ZERO_ADDRESS = "0x" + "00" * 20
INTENT_TYPE = "(address,address,uint256,bytes32,uint256,uint256,uint256)"


def relay(env: Env, intent: tuple[Any, ...], signature: bytes, fee: int = 0, sender=None):
    return env.relay_intent(intent, signature, fee, sender)


def context(intent: tuple[Any, ...], signature: bytes) -> bytes:
    return eth_abi.encode([INTENT_TYPE, "bytes"], [intent, signature])


def execution(target: str, value: int, call_data: bytes = b"") -> bytes:
    return bytes.fromhex(target[2:]) + value.to_bytes(32, "big") + call_data


def transfer_call(env: Env, to: str, amount: int) -> bytes:
    return env.calldata("transfer", to, amount, vault=env.usdc)


# ---------------------------------------------------------------------------------- relayed


def test_a_relayed_intent_pays_exactly_like_the_agent_would(env: Env) -> None:
    to = fresh_address("intent-shop")
    intent = env.intent(to, ETHER // 2, reference=b"invoice-9", nonce=3)
    before = env.available(ETH)
    receipt = relay(env, intent, env.sign_intent(intent))
    paid = env.event(receipt, "PaymentExecuted")
    assert (paid["agent"], paid["to"], paid["amount"]) == (env.agent.address, to, ETHER // 2)
    assert env.events(receipt, "RequestExecuted") == []
    assert paid["ref"] == ref("invoice-9")
    assert env.eth_of(to) == ETHER // 2
    assert env.available(ETH) <= before - ETHER // 2
    assert env.vault.functions.isNonceUsed(env.agent.address, 3).call() is True


def test_the_relayer_fee_is_capped_by_the_agent_and_counted_against_its_limits(env: Env) -> None:
    to = fresh_address("fee-shop")
    intent = env.intent(to, 10 * USDC, token=env.usdc.address, nonce=4, max_fee=1 * USDC)
    signature = env.sign_intent(intent)
    with expect_revert("FeeTooHigh", 1 * USDC + 1, 1 * USDC):
        relay(env, intent, signature, fee=1 * USDC + 1)
    before = env.available(env.usdc.address)
    receipt = relay(env, intent, signature, fee=1 * USDC, sender=env.spare[0])
    fee = env.event(receipt, "RelayFeePaid")
    assert (fee["relayer"], fee["fee"]) == (env.spare[0].address, 1 * USDC)
    assert env.usdc_of(env.spare[0].address) == 1 * USDC
    assert env.available(env.usdc.address) <= before - 11 * USDC
    # amount + fee over the per-payment limit escalates (and no fee is paid then)
    big = env.intent(to, USDC_MAX, token=env.usdc.address, nonce=5, max_fee=1 * USDC)
    receipt = relay(env, big, env.sign_intent(big), fee=1 * USDC, sender=env.spare[0])
    created = env.event(receipt, "PaymentRequested")
    assert created["reasons"] == REASON_OVER_PER_PAYMENT and created["amount"] == USDC_MAX
    assert env.usdc_of(env.spare[0].address) == 1 * USDC


def test_a_fee_that_wraps_the_charge_around_reverts_and_spends_nothing(env: Env) -> None:
    """A relayer holding an intent with an unbounded maxFee picks the fee so that amount + fee
    wraps past 2^256 to a charge inside the limits (0, 1, just under the amount): it would take a
    huge fee while the budget is charged almost nothing. Every such fee reverts with solc's
    overflow panic, the nonce stays unused and nothing moves."""
    to = fresh_address("wrap-shop")
    for nonce, token in ((40, ETH), (41, env.usdc.address)):
        amount = 5 * USDC if token != ETH else ETHER // 100
        intent = env.intent(to, amount, token=token, nonce=nonce, max_fee=2**256 - 1)
        signature = env.sign_intent(intent)
        held = env.usdc_of(env.vault.address), env.eth_of(env.vault.address)
        for wrapped_charge in (0, 1, amount - 1):
            with expect_revert("Panic", 0x11):
                relay(
                    env,
                    intent,
                    signature,
                    fee=2**256 - amount + wrapped_charge,
                    sender=env.spare[0],
                )
        assert env.vault.functions.isNonceUsed(env.agent.address, nonce).call() is False
        assert (env.usdc_of(env.vault.address), env.eth_of(env.vault.address)) == held
        assert env.usdc_of(env.spare[0].address) == 0 or token == ETH
        # the same intent with an honest fee still pays once
        receipt = relay(env, intent, signature, fee=1, sender=env.spare[0])
        assert env.event(receipt, "RelayFeePaid")["fee"] == 1


def test_an_intent_outside_the_limits_becomes_the_agents_request(env: Env) -> None:
    intent = env.intent(fresh_address("big"), ETH_MAX + 1, nonce=6)
    receipt = relay(env, intent, env.sign_intent(intent))
    created = env.event(receipt, "PaymentRequested")
    assert (created["agent"], created["reasons"]) == (env.agent.address, REASON_OVER_PER_PAYMENT)
    with expect_revert("NonceAlreadyUsed", env.agent.address, 6):
        relay(env, intent, env.sign_intent(intent))


def test_replayed_reordered_and_cancelled_nonces(env: Env) -> None:
    to = fresh_address("nonces")
    intents = {n: env.intent(to, 1_000, nonce=n) for n in (300, 7, 256, 8)}
    for n in (300, 7, 256):  # any order
        relay(env, intents[n], env.sign_intent(intents[n]))
    with expect_revert("NonceAlreadyUsed", env.agent.address, 7):
        relay(env, intents[7], env.sign_intent(intents[7]))
    # the agent cancels nonce 8 before anyone submits it; an owner can too
    receipt = env.send(
        env.vault.functions.invalidateNonces(env.agent.address, 0, 1 << 8), env.agent
    )
    assert env.event(receipt, "NoncesInvalidated")["by"] == env.agent.address
    with expect_revert("NonceAlreadyUsed", env.agent.address, 8):
        relay(env, intents[8], env.sign_intent(intents[8]))
    env.send(env.vault.functions.invalidateNonces(env.agent.address, 0, 1 << 9), env.owners[2])
    with expect_revert("NotNonceAuthority"):
        env.send(env.vault.functions.invalidateNonces(env.agent.address, 0, 1 << 10), env.outsider)


def test_signatures_for_another_vault_chain_agent_or_intent_are_refused(env: Env) -> None:
    to = fresh_address("forged")
    intent = env.intent(to, 1_000, nonce=11)
    other = env.create_vault([o.address for o in env.owners], 2, salt=b"intent-other")
    # signed for the other vault: recovers to a stranger here
    with expect_revert("AgentNotActive"):
        relay(env, intent, env.sign_intent(intent, vault=other))
    with expect_revert("AgentNotActive"):
        relay(env, intent, env.sign_intent(intent, chain_id=env.chain.chain_id + 1))
    stranger = Account.from_key(Web3.keccak(text="not-an-agent"))
    with expect_revert("AgentNotActive", stranger.address, 0):
        relay(env, intent, env.sign_intent(intent, stranger))
    # the relayer changes the recipient or amount: the signature no longer names the agent
    changed = (intent[0], fresh_address("thief"), *intent[2:])
    with expect_revert("AgentNotActive"):
        relay(env, changed, env.sign_intent(intent))
    bigger = (*intent[:2], intent[2] * 1000, *intent[3:])
    with expect_revert("AgentNotActive"):
        relay(env, bigger, env.sign_intent(intent))
    # a malleable (high-s) copy of a valid signature: compact form and permission context
    sig = env.sign_intent(intent)
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    s = int.from_bytes(sig[32:64], "big")
    malleable = sig[:32] + (n - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    # (the compact form cannot carry a high s: its top bit is v's parity, so it names a stranger)
    with expect_revert("AgentNotActive"):
        env.send(
            env.vault.functions.payWithIntent(intent, 0, sig[:32], (n - s).to_bytes(32, "big")),
            env.outsider,
        )
    with expect_revert("InvalidSignature"):
        env.send(
            env.vault.functions.redeemDelegations(
                [context(intent, malleable)], [SINGLE_DEFAULT], [execution(to, 1_000)]
            ),
            env.outsider,
        )
    with expect_revert("SignatureExpired"):
        late = env.intent(to, 1_000, nonce=12, deadline=env.now() - 1)
        relay(env, late, env.sign_intent(late))


def test_intents_of_a_paused_or_revoked_agent_or_vault_do_not_run(env: Env) -> None:
    intent = env.intent(fresh_address("stopped"), 1_000, nonce=13)
    signature = env.sign_intent(intent)
    env.send(env.vault.functions.pause(), env.owners[0])
    with expect_revert("VaultIsPaused"):
        relay(env, intent, signature)
    env.govern_signed([("unpause", ())], nonce=77)
    env.send(env.vault.functions.revokeAgent(env.agent.address), env.owners[0])
    with expect_revert("AgentNotActive", env.agent.address, 3):
        relay(env, intent, signature)


INTENT_TYPEHASH = Web3.keccak(
    text="Intent(address token,address to,uint256 amount,bytes32 ref,uint256 nonce,"
    "uint256 deadline,uint256 maxFee)"
)
DOMAIN_TYPEHASH = Web3.keccak(
    text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)


def signed_words(env: Env, words: list[int], signer: Any = None) -> tuple[bytes, bytes]:
    """(r, vs) of an EIP-712 signature over the intent's seven words exactly as given (a signer
    may sign words no ABI encoder writes: the vault hashes the words as they lie in calldata)."""
    domain = Web3.keccak(
        eth_abi.encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [
                DOMAIN_TYPEHASH,
                Web3.keccak(text="AgentVault"),
                Web3.keccak(text="1"),
                env.chain.chain_id,
                env.vault.address,
            ],
        )
    )
    struct = Web3.keccak(INTENT_TYPEHASH + b"".join(w.to_bytes(32, "big") for w in words))
    return env.compact(
        bytes(
            (signer or env.agent)
            .unsafe_sign_hash(Web3.keccak(b"\x19\x01" + domain + struct))
            .signature
        )
    )


def raw_intent_call(words: list[int], fee: int, r: bytes, vs: bytes) -> bytes:
    """payWithIntent's calldata written word by word, as a hostile relayer can."""
    selector = bytes(Web3.keccak(text=f"payWithIntent({INTENT_TYPE},uint256,bytes32,bytes32)"))[:4]
    return selector + b"".join(w.to_bytes(32, "big") for w in [*words, fee]) + r + vs


def send_raw(env: Env, data: bytes) -> TxReceipt:
    return env.chain.send_transaction(
        env.outsider, {"to": env.vault.address, "data": data, "value": 0}
    )


def test_a_hostile_relayers_calldata_is_refused_word_by_word(env: Env) -> None:
    """payWithIntent reads the intent's two address words itself (one check for both): a word
    with any bit above its 160, signed by the agent or padded by the relayer, short calldata, or
    words moved as if the struct had an offset, never pays and never spends the nonce."""
    to = fresh_address("raw-shop")
    intent = env.intent(to, 1_000, nonce=901)
    words = [int(ETH, 16), int(to, 16), 1_000, int.from_bytes(intent[3], "big"), 901, intent[5], 0]
    r, vs = signed_words(env, words)
    good = raw_intent_call(words, 0, r, vs)
    assert good == env.calldata("payWithIntent", intent, 0, r, vs)  # the ABI's own layout
    for bit in (160, 200, 255):
        for index in (0, 1):  # the token word, the recipient's word
            dirty = list(words)
            dirty[index] |= 1 << bit
            # signed by the agent itself: the signature is valid for these words, the word is not
            # an address
            with expect_revert("<empty revert>"):
                send_raw(env, raw_intent_call(dirty, 0, *signed_words(env, dirty)))
            # padded by the relayer after the agent signed the clean words
            with expect_revert("<empty revert>"):
                send_raw(env, raw_intent_call(dirty, 0, r, vs))
    for cut in (1, 31, 32, 64):  # short calldata: solc's decoder refuses it before any read
        with expect_revert("<empty revert>"):
            send_raw(env, good[:-cut])
    # solc reads a static struct in place, never through an offset: an offset word in front is
    # read as the token and every word after it moves on (here the nonce lands on the deadline)
    shifted = good[:4] + (0x100).to_bytes(32, "big") + good[4:]
    with expect_revert("SignatureExpired", 901):
        send_raw(env, shifted)
    # the same with a deadline in the nonce's place: the moved words pass the deadline and
    # recover a stranger, whose payment to the zero address (the token's word) is refused
    moved = [0x100, *words[:4], intent[5], 0]
    with expect_revert("ZeroAddress"):
        send_raw(env, raw_intent_call(moved, 0, r, vs))
    assert env.eth_of(to) == 0
    assert env.vault.functions.isNonceUsed(env.agent.address, 901).call() is False
    # the clean words, sent the same raw way, pay once
    receipt = send_raw(env, good)
    assert env.event(receipt, "PaymentExecuted")["to"] == to
    assert env.eth_of(to) == 1_000
    with expect_revert("NonceAlreadyUsed", env.agent.address, 901):
        send_raw(env, good)


# ---------------------------------------------------------------------------------- ERC-7710


def test_redeem_delegations_settles_exactly_the_intended_eth_and_token_transfers(env: Env) -> None:
    to = fresh_address("x402-seller")
    eth_intent = env.intent(to, 1_000, nonce=20)
    usdc_intent = env.intent(to, 3 * USDC, token=env.usdc.address, nonce=21)
    receipt = env.send(
        env.vault.functions.redeemDelegations(
            [
                context(eth_intent, env.sign_intent(eth_intent)),
                context(usdc_intent, env.sign_intent(usdc_intent)),
            ],
            [SINGLE_DEFAULT, SINGLE_DEFAULT],
            [
                execution(to, 1_000),
                execution(env.usdc.address, 0, transfer_call(env, to, 3 * USDC)),
            ],
        ),
        env.spare[1],
    )
    assert len(env.events(receipt, "PaymentExecuted")) == 2
    assert env.eth_of(to) == 1_000 and env.usdc_of(to) == 3 * USDC
    # replaying the settlement
    with expect_revert("NonceAlreadyUsed", env.agent.address, 20):
        env.send(
            env.vault.functions.redeemDelegations(
                [context(eth_intent, env.sign_intent(eth_intent))],
                [SINGLE_DEFAULT],
                [execution(to, 1_000)],
            ),
            env.spare[1],
        )


def test_redeem_delegations_refuses_any_execution_other_than_the_intent(env: Env) -> None:
    to, thief = fresh_address("seller"), fresh_address("thief")
    intent = env.intent(to, 2 * USDC, token=env.usdc.address, nonce=30)
    ctx = context(intent, env.sign_intent(intent))
    token = env.usdc.address
    bad_executions = [
        execution(token, 0, transfer_call(env, thief, 2 * USDC)),  # other recipient
        execution(token, 0, transfer_call(env, to, 3 * USDC)),  # other amount
        execution(token, 1, transfer_call(env, to, 2 * USDC)),  # with value
        execution(to, 0, transfer_call(env, to, 2 * USDC)),  # other target
        execution(token, 0, transfer_call(env, to, 2 * USDC) + b"\0"),  # extra data
        execution(token, 0, env.calldata("approve", thief, 2 * USDC, vault=env.usdc)),
        b"\x01" * 51,  # malformed
    ]
    for bad in bad_executions:
        with expect_revert("ExecutionMismatch", 0):
            env.send(
                env.vault.functions.redeemDelegations([ctx], [SINGLE_DEFAULT], [bad]), env.outsider
            )
    good = execution(token, 0, transfer_call(env, to, 2 * USDC))
    for mode in (b"\x01" + b"\0" * 31, b"\0\x01" + b"\0" * 30, b"\0" * 31 + b"\x01"):
        with expect_revert("UnsupportedExecutionMode"):
            env.send(env.vault.functions.redeemDelegations([ctx], [mode], [good]), env.outsider)
    with expect_revert("LengthMismatch"):
        env.send(env.vault.functions.redeemDelegations([ctx], [], [good]), env.outsider)
    with expect_revert("InvalidPermissionContext", 0):
        env.send(
            env.vault.functions.redeemDelegations([b"\x00" * 5], [SINGLE_DEFAULT], [good]),
            env.outsider,
        )
    env.send(env.vault.functions.redeemDelegations([ctx], [SINGLE_DEFAULT], [good]), env.outsider)
    assert env.usdc_of(to) == 2 * USDC and env.usdc_of(thief) == 0


def test_a_hostile_facilitators_permission_context_is_refused_word_by_word(env: Env) -> None:
    """redeemDelegations reads the context's words and the signature in place: dirty address
    words, another offset or length, a short context, a signature that is not 65 bytes of
    r | s | v, or any changed word never pay and never spend the nonce."""
    to = fresh_address("ctx-shop")
    intent = env.intent(to, 1_000, nonce=902)
    signature = env.sign_intent(intent)
    good = context(intent, signature)
    assert int.from_bytes(good[224:256], "big") == 256 and good[256:288][-1] == 65
    run = execution(to, 1_000)

    def redeem(ctx: bytes) -> TxReceipt:
        fn = env.vault.functions.redeemDelegations([ctx], [SINGLE_DEFAULT], [run])
        return env.send(fn, env.outsider)

    def word(ctx: bytes, index: int, value: int) -> bytes:
        return ctx[: 32 * index] + value.to_bytes(32, "big") + ctx[32 * index + 32 :]

    malformed = [
        *(word(good, 0, 1 << bit) for bit in (160, 255)),  # dirty token word (ETH)
        *(word(good, 1, int(to, 16) | 1 << bit) for bit in (160, 255)),  # dirty recipient
        word(good, 7, 288),  # the signature's offset moved on
        word(good, 7, 224),  # ... or back into the intent
        word(good, 8, 65 + 32),  # a length past the end of the context
        good[:287],  # shorter than the intent, offset and length
    ]
    for ctx in malformed:
        with expect_revert("InvalidPermissionContext", 0):
            redeem(ctx)
    r_s_v = good[288:353]
    bad_signatures = [
        r_s_v[:64],  # the compact (EIP-2098) form: the context takes 65 bytes
        r_s_v + b"\x00",  # 66 bytes
        r_s_v[:64] + bytes([r_s_v[64] - 27]),  # v as 0/1
    ]
    for sig in bad_signatures:
        with expect_revert("InvalidSignature", ZERO_ADDRESS):
            redeem(context(intent, sig))
    flipped = r_s_v[:64] + bytes([55 - r_s_v[64]])  # the other v: another signer
    for ctx in (
        context(intent, flipped),
        word(good, 3, 1),  # another ref
        word(good, 6, 5),  # another maxFee
    ):
        with expect_revert("AgentNotActive"):
            redeem(ctx)
    assert env.eth_of(to) == 0
    assert env.vault.functions.isNonceUsed(env.agent.address, 902).call() is False
    # trailing bytes after the signature are outside it; the good context pays, once
    redeem(good + b"\xff" * 7)
    assert env.eth_of(to) == 1_000
    with expect_revert("NonceAlreadyUsed", env.agent.address, 902):
        redeem(good)


def test_redeem_delegations_reverts_outside_the_limits_instead_of_escalating(env: Env) -> None:
    to = fresh_address("too-much")
    intent = env.intent(to, ETH_MAX + 1, nonce=40)
    with expect_revert("PaymentOutsidePolicy", env.agent.address, REASON_OVER_PER_PAYMENT):
        env.send(
            env.vault.functions.redeemDelegations(
                [context(intent, env.sign_intent(intent))],
                [SINGLE_DEFAULT],
                [execution(to, ETH_MAX + 1)],
            ),
            env.outsider,
        )
    assert env.vault.functions.isNonceUsed(env.agent.address, 40).call() is False


def test_a_batch_of_delegations_is_atomic(env: Env) -> None:
    to = fresh_address("atomic-7710")
    ok = env.intent(to, 1_000, nonce=50)
    bad = env.intent(to, 1_000, nonce=51)
    with expect_revert("ExecutionMismatch", 1):
        env.send(
            env.vault.functions.redeemDelegations(
                [context(ok, env.sign_intent(ok)), context(bad, env.sign_intent(bad))],
                [SINGLE_DEFAULT, SINGLE_DEFAULT],
                [execution(to, 1_000), execution(to, 999)],
            ),
            env.outsider,
        )
    assert env.eth_of(to) == 0
    assert env.vault.functions.isNonceUsed(env.agent.address, 50).call() is False


def test_intent_digest_view_matches_the_typed_data(env: Env) -> None:
    from eth_account.messages import encode_typed_data

    intent = env.intent(fresh_address("digest"), 5, nonce=60, max_fee=2)
    typed = env.typed_intent(intent)
    message = encode_typed_data(full_message=typed)
    expected = Web3.keccak(b"\x19" + message.version + message.header + message.body)
    assert env.vault.functions.intentDigest(intent).call() == expected
    assert DAY  # keep the import used for readers: deadlines default to a day
