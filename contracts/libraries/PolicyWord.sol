// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title PolicyWord
/// @notice An agent's limits and budget for one token, packed into one storage word, and the one
/// implementation of the budget rule (a continuously refilling budget, GCRA).
/// @dev Layout (high to low bits):
/// | maxPerPayment (88) | allowance (88) | period (29) | RBUDGET | SUB | SCOPE | ALLOWLIST | FAST | tat (46) |
/// - `tat` is the theoretical arrival time of the budget in 1/256 s: the budget is full when
///   tat <= now; a payment of x moves tat forward by x * period / allowance (rounded up); it runs only
///   if the new tat stays within one period of now. A token bucket of size `allowance` refilling at
///   allowance/period, in one word.
/// - SCOPE: the token is in the agent's scope. Without it every payment in the token escalates
///   (REASON_TOKEN_NOT_IN_SCOPE); the limits and `tat` stay in the word, so that the budget's state
///   survives removal, revocation and re-adding (see {rewrite}).
/// - FAST caches, in the word a payment reads anyway, that every rule outside it holds (vault not
///   paused, agent active, past `validAfter`, no `validUntil`, token in scope). ALLOWLIST (with
///   FAST) mirrors the agent's `useAllowlist`. Whoever changes one of those rewrites the flags.
/// - SUB: the word belongs to a sub-agent: its payments also spend, in the same token, the word of
///   every agent above it (a shared budget: a subtree never spends more than its root allows).
/// - RBUDGET: the agent's lineage has per-recipient budgets in this token, checked on every payment.
/// {unscope} (a token leaves the scope) keeps both; {retire} (the agent is revoked) clears them.
/// Permit2's `libraries/Allowance.sol` is the model: internal functions, inlined, no call overhead.
library PolicyWord {
    uint256 internal constant TIME_SCALE_BITS = 8;
    uint256 internal constant TAT_MASK = (1 << 46) - 1;
    uint256 internal constant FAST = 1 << 46;
    uint256 internal constant ALLOWLIST = 1 << 47;
    uint256 internal constant SCOPE = 1 << 48;
    uint256 internal constant SUB = 1 << 49;
    uint256 internal constant RBUDGET = 1 << 50;
    uint256 internal constant FLAGS = FAST | ALLOWLIST;
    uint256 internal constant PERIOD_SHIFT = 51;
    uint256 internal constant ALLOWANCE_SHIFT = 80;
    uint256 internal constant MAX_SHIFT = 168;
    uint256 internal constant MASK_29 = (1 << 29) - 1;
    uint256 internal constant MASK_88 = (1 << 88) - 1;

    /// @dev Largest per-payment limit or allowance (2^88 - 1 base units) and period (2^29 - 1 s, 17 years).
    uint256 internal constant MAX_LIMIT = MASK_88;
    uint256 internal constant MAX_PERIOD = MASK_29;

    uint32 internal constant REASON_OVER_PER_PAYMENT = 1;
    uint32 internal constant REASON_OVER_ALLOWANCE = 2;
    uint32 internal constant REASON_RECIPIENT_NOT_ALLOWED = 4;
    uint32 internal constant REASON_TOKEN_NOT_IN_SCOPE = 8;
    uint32 internal constant REASON_OVER_RECIPIENT_BUDGET = 16;

    function maxPerPayment(uint256 word) internal pure returns (uint256) {
        return word >> MAX_SHIFT;
    }

    function allowance(uint256 word) internal pure returns (uint256) {
        return (word >> ALLOWANCE_SHIFT) & MASK_88;
    }

    function period(uint256 word) internal pure returns (uint256) {
        return (word >> PERIOD_SHIFT) & MASK_29;
    }

    function inScope(uint256 word) internal pure returns (bool) {
        return word & SCOPE != 0;
    }

    /// @dev The word with its budget consumed by `amount` and the escalation reasons (0: the
    /// payment runs). With reasons, `newWord` is `word` unchanged.
    function evaluate(uint256 word, uint256 amount) internal view returns (uint32 reasons, uint256 newWord) {
        if (word & SCOPE == 0) return (REASON_TOKEN_NOT_IN_SCOPE, word);
        return spend(word, amount);
    }

    /// @dev {evaluate} for a word known to be in scope (FAST implies it).
    function spend(uint256 word, uint256 amount) internal view returns (uint32 reasons, uint256 newWord) {
        if (amount > word >> MAX_SHIFT) reasons = REASON_OVER_PER_PAYMENT;
        uint256 a = (word >> ALLOWANCE_SHIFT) & MASK_88;
        if (amount > a) return (reasons | REASON_OVER_ALLOWANCE, word);
        uint256 scaledPeriod = ((word >> PERIOD_SHIFT) & MASK_29) << TIME_SCALE_BITS;
        uint256 nowScaled = block.timestamp << TIME_SCALE_BITS;
        uint256 tat = word & TAT_MASK;
        uint256 start = tat > nowScaled ? tat : nowScaled;
        // 1 <= amount <= a < 2^88 (every caller spends a non-zero amount), scaledPeriod < 2^37 and
        // start < 2^48 while timestamps fit 40 bits: nothing here overflows or underflows, so solc's
        // checks are skipped (division by zero is still checked); the cost rounds up.
        uint256 newTat;
        unchecked {
            newTat = start + (amount * scaledPeriod + a - 1) / a;
            if (newTat > nowScaled + scaledPeriod) return (reasons | REASON_OVER_ALLOWANCE, word);
        }
        newWord = (word & ~TAT_MASK) | newTat;
    }

    /// @dev What the budget holds now, whether or not the token is in scope (rounded down).
    function budget(uint256 word) internal view returns (uint256) {
        uint256 p = (word >> PERIOD_SHIFT) & MASK_29;
        if (p == 0) return 0;
        uint256 scaledPeriod = p << TIME_SCALE_BITS;
        uint256 nowScaled = block.timestamp << TIME_SCALE_BITS;
        uint256 tat = word & TAT_MASK;
        uint256 start = tat > nowScaled ? tat : nowScaled;
        if (start >= nowScaled + scaledPeriod) return 0;
        return (nowScaled + scaledPeriod - start) * ((word >> ALLOWANCE_SHIFT) & MASK_88) / scaledPeriod;
    }

    /// @dev What the agent can spend now in one payment, ignoring `maxPerPayment` (0 out of scope).
    function available(uint256 word) internal view returns (uint256) {
        return word & SCOPE == 0 ? 0 : budget(word);
    }

    /// @dev New limits for a word, in scope, without flags. The rule: no change of limits ever
    /// increases what the agent can spend at that instant; afterwards the budget refills at the new
    /// rate. What was spent stays spent: with `A0` the old allowance and `b0` the old budget now
    /// (kept through removal and revocation), the new budget is `min(b0, max(0, A1 - (A0 - b0)))`.
    /// A word that never had limits (period 0) starts full: that first grant is the owners' decision.
    function rewrite(uint256 word, uint256 newMax, uint256 newAllowance, uint256 newPeriod)
        internal
        view
        returns (uint256)
    {
        uint256 tat = 0;
        if ((word >> PERIOD_SHIFT) & MASK_29 != 0) {
            uint256 b0 = budget(word);
            uint256 spent = ((word >> ALLOWANCE_SHIFT) & MASK_88) - b0;
            uint256 target = newAllowance > spent ? newAllowance - spent : 0;
            if (b0 < target) target = b0;
            if (target < newAllowance) {
                // the smallest tat whose budget is <= target: budget = floor(d * A1 / P1) with
                // d = floor(target * P1 / A1) <= target * P1 / A1 (target < 2^88, P1 < 2^38)
                uint256 scaledPeriod = newPeriod << TIME_SCALE_BITS;
                tat = (block.timestamp << TIME_SCALE_BITS) + scaledPeriod - target * scaledPeriod / newAllowance;
            }
        }
        return (newMax << MAX_SHIFT) | (newAllowance << ALLOWANCE_SHIFT) | (newPeriod << PERIOD_SHIFT) | SCOPE | tat;
    }

    /// @dev The word taken out of scope: limits and budget state kept, flags cleared.
    function unscope(uint256 word) internal pure returns (uint256) {
        return word & ~(FLAGS | SCOPE);
    }

    /// @dev The word of a revoked agent: limits and budget state kept, every flag cleared.
    function retire(uint256 word) internal pure returns (uint256) {
        return word & ~(FLAGS | SCOPE | SUB | RBUDGET);
    }

    /// @dev `word` with its FAST/ALLOWLIST bits replaced by `flags` (only for words in scope).
    function withFlags(uint256 word, uint256 flags) internal pure returns (uint256) {
        return word & SCOPE == 0 ? word : (word & ~FLAGS) | flags;
    }
}
