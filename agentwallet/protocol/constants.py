"""AgentVault's numbers and enums, defined once for the whole package.

They mirror ``contracts/interfaces/IAgentVaultBase.sol`` and ``contracts/libraries/PolicyWord.sol``;
the enum values are the ``uint8`` the contract stores and emits.
"""

from __future__ import annotations

from enum import IntEnum, IntFlag

#: The zero address; as a token address it means ETH (the chain's native coin).
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
#: Token address meaning ETH everywhere in agentwallet.
ETH = ZERO_ADDRESS
#: An empty payment reference (bytes32 zero).
ZERO_REF = bytes(32)

#: Limits (max per payment, allowance) are at most this many base units (88 bits).
MAX_LIMIT = (1 << 88) - 1
#: A budget period is at most this many seconds (29 bits, 17 years).
MAX_PERIOD = (1 << 29) - 1
#: The budget's clock runs in 1/2**TIME_SCALE_BITS seconds (1/256 s).
TIME_SCALE_BITS = 8
#: Owners a vault may have.
MAX_OWNERS = 20
#: Agents a vault may list at once, and tokens one agent may have limits for.
MAX_AGENTS = 64
MAX_TOKENS_PER_AGENT = 8
#: Bounds of a vault's request expiry (seconds) and of its max open requests per agent.
MIN_REQUEST_EXPIRY = 3600
MAX_REQUEST_EXPIRY = 365 * 86400
MAX_OPEN_REQUESTS_CAP = 1000
#: An SSTORE to a warm, non-zero slot (EIP-2929): what one more policy-flag rewrite costs.
PER_WORD_GAS = 2_900


class Reason(IntFlag):
    """Why a payment escalates to the owners (the contract's ``REASON_*`` bits)."""

    OVER_PER_PAYMENT = 1
    OVER_ALLOWANCE = 2
    RECIPIENT_NOT_ALLOWED = 4
    TOKEN_NOT_IN_SCOPE = 8
    OVER_RECIPIENT_BUDGET = 16

    @property
    def texts(self) -> tuple[str, ...]:
        """The set bits as human reasons, in bit order."""
        return reason_texts(self)


#: Escalation reason bit -> human reason.
REASON_TEXT: dict[Reason, str] = {
    Reason.OVER_PER_PAYMENT: "over per-payment limit",
    Reason.OVER_ALLOWANCE: "over period allowance",
    Reason.RECIPIENT_NOT_ALLOWED: "recipient not allowed",
    Reason.TOKEN_NOT_IN_SCOPE: "token not in scope",
    Reason.OVER_RECIPIENT_BUDGET: "over per-recipient budget",
}


def reason_texts(bits: int) -> tuple[str, ...]:
    """An escalation reason bitmask as human reasons, in bit order."""
    return tuple(text for bit, text in REASON_TEXT.items() if bits & bit)


class _Named(IntEnum):
    @property
    def text(self) -> str:
        """The lowercase name, as shown to humans (``"active"``)."""
        return self.name.lower()

    @classmethod
    def text_of(cls, value: int) -> str:
        """The name of ``value``, or the number itself if the contract has a newer value."""
        try:
            return cls(value).text
        except ValueError:
            return str(value)


class AgentStatus(_Named):
    """An agent key's status in a vault (``ROTATED``: the key handed its rights to a new key)."""

    NONE = 0
    ACTIVE = 1
    PAUSED = 2
    REVOKED = 3
    ROTATED = 4


class RequestStatus(_Named):
    """A request's status (the contract's ``paymentStatus``/``proposalStatus``): a pending request
    past its expiry reads ``EXPIRED``; ``AGENT_REVOKED`` is a revoked agent's payment request
    (never stored); ``CLOSED`` a closed payment request whose slot a later request of the same
    agent reuses (its final status is in its events)."""

    NONE = 0
    PENDING = 1
    EXECUTED = 2
    REJECTED = 3
    CANCELLED = 4
    EXPIRED = 5
    AGENT_REVOKED = 6
    CLOSED = 7


class RequestKind(_Named):
    """What a request asks the owners to approve: an agent's escalated payment
    (``PaymentRequest``), an owner's governance proposal (``GovernanceProposal``) or an agent's
    scoped contract call outside its grants (``CallRequest``). The kinds share one id sequence
    (the contract itself has no kind field: each kind has its own struct and functions)."""

    PAYMENT = 0
    GOVERNANCE = 1
    CALL = 2
