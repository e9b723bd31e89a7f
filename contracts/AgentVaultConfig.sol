// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";
import {Forwarder} from "./base/Forwarder.sol";
import {IAgentVaultConfig} from "./interfaces/IAgentVaultConfig.sol";
import {AgentVaultStorage} from "./base/AgentVaultStorage.sol";
import {PolicyWord} from "./libraries/PolicyWord.sol";

/// @title AgentVaultConfig
/// @notice Agents, limits, owners, the brakes and key rotation of a vault. Runs only by
/// delegatecall from the vault's admin extension, in the vault's storage; every selector not here
/// goes on, the same way, to {AgentVaultCalls} (and from there to {AgentVaultLens}).
/// @dev Reducing risk (pause, pause or revoke an agent, lower a limit, remove a token or a
/// recipient, switch the allowlist on) is one owner's call; adding risk runs only as a call of the
/// vault on itself, i.e. through governance ({IAgentVaultAdmin}).
contract AgentVaultConfig is IAgentVaultConfig, AgentVaultStorage, Forwarder {
    using TransientSlot for *;

    /// @notice The calls extension every selector not here is forwarded to.
    address private immutable CALLS;

    constructor(address calls) {
        if (calls.code.length == 0) revert ZeroAddress();
        CALLS = calls;
    }

    // ------------------------------------------------------------------------------------------
    // Risk-reducing actions: one owner
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultConfig
    function pause() external onlyDelegateCall onlyOwner {
        Layout storage l = _layout();
        l.config.paused = true;
        _syncOwners();
        uint256 n = l.config.agentCount;
        for (uint256 i = 0; i < n; ++i) {
            address agent = l.agentAt[i];
            _setFlags(agent, l.agents[agent], 0);
        }
        emit VaultPaused(msg.sender);
    }

    /// @inheritdoc IAgentVaultConfig
    function pauseAgent(address agent) external onlyDelegateCall onlyOwner {
        Agent storage a = _liveAgent(agent);
        if (a.status != AgentStatus.Active) revert AgentNotActive(agent, a.status);
        a.status = AgentStatus.Paused;
        _setFlags(agent, a, 0);
        emit AgentStatusChanged(agent, AgentStatus.Paused, msg.sender, 0);
    }

    /// @inheritdoc IAgentVaultConfig
    function revokeAgent(address agent) external onlyDelegateCall {
        _onlyOwnerOrAncestor(agent);
        _liveAgent(agent);
        _revoke(agent, true);
    }

    /// @inheritdoc IAgentVaultConfig
    function reduceLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance)
        external
        onlyDelegateCall
    {
        _onlyOwnerOrAncestor(agent);
        _knownAgent(agent);
        Layout storage l = _layout();
        uint256 word = l.policies[agent][token];
        if (!PolicyWord.inScope(word)) revert TokenNotInScope(agent, token);
        uint256 currentMax = PolicyWord.maxPerPayment(word);
        uint256 currentAllowance = PolicyWord.allowance(word);
        if (maxPerPayment > currentMax) revert LimitNotReduced(currentMax, maxPerPayment);
        if (allowance > currentAllowance) revert LimitNotReduced(currentAllowance, allowance);
        uint256 period = PolicyWord.period(word);
        uint256 updated = PolicyWord.rewrite(word, maxPerPayment, allowance, period)
            | (word & (PolicyWord.FLAGS | PolicyWord.SUB | PolicyWord.RBUDGET));
        l.policies[agent][token] = updated;
        emit LimitsChanged(
            agent, token, maxPerPayment, allowance, uint32(period), PolicyWord.available(updated), msg.sender, 0
        );
    }

    /// @inheritdoc IAgentVaultConfig
    function removeToken(address agent, address token) external onlyDelegateCall {
        _onlyOwnerOrAncestor(agent);
        Agent storage a = _knownAgent(agent);
        Layout storage l = _layout();
        uint256 word = l.policies[agent][token];
        if (!PolicyWord.inScope(word)) revert TokenNotInScope(agent, token);
        l.policies[agent][token] = PolicyWord.unscope(word);
        _dropToken(a, token);
        emit LimitsChanged(agent, token, 0, 0, 0, 0, msg.sender, 0);
    }

    /// @inheritdoc IAgentVaultConfig
    function removeRecipient(address agent, address recipient) external onlyDelegateCall {
        _onlyOwnerOrAncestor(agent);
        Agent storage a = _knownAgent(agent);
        _layout().allowlist[a.lineage][recipient] = false;
        emit RecipientChanged(agent, recipient, false, msg.sender, 0);
    }

    /// @inheritdoc IAgentVaultConfig
    function enforceAllowlist(address agent) external onlyDelegateCall onlyOwner {
        Agent storage a = _knownAgent(agent);
        a.options |= OPT_ALLOWLIST;
        _setFlags(agent, a, _flags(a, _layout().config.paused));
        emit AgentConfigured(agent, a.lineage, a.validAfter, a.validUntil, true, 0);
    }

    // ------------------------------------------------------------------------------------------
    // Key rotation
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultConfig
    function rotateAgentKey(
        address oldKey,
        address newKey,
        uint256 nonce,
        uint256 deadline,
        bytes calldata oldSig,
        bytes calldata newSig
    ) external onlyDelegateCall nonReentrant {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(ROTATE_TYPEHASH, oldKey, newKey, nonce, deadline)));
        if (msg.sender != oldKey || oldSig.length != 0) _requireSigner(digest, oldSig, oldKey);
        _requireSigner(digest, newSig, newKey);
        _useNonce(oldKey, nonce);
        _rotate(oldKey, newKey, oldKey);
    }

    // ------------------------------------------------------------------------------------------
    // Risk-adding actions: only through governance
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultConfig
    function addAgent(address agent, uint40 validAfter, uint40 validUntil, bool useAllowlist)
        external
        onlyDelegateCall
        onlyVault
    {
        _addAgent(agent, validAfter, validUntil, useAllowlist);
    }

    /// @dev Adds an agent (a new lineage unless it is active or paused, which re-configures it).
    function _addAgent(address agent, uint40 validAfter, uint40 validUntil, bool useAllowlist) private {
        if (agent == address(0) || agent == address(this) || agent == SENTINEL) revert InvalidAgent(agent);
        if (_isOwner(agent)) revert AgentIsOwner(agent);
        if (validUntil != 0 && validUntil <= validAfter) revert InvalidValidity(validAfter, validUntil);
        Layout storage l = _layout();
        Agent storage a = l.agents[agent];
        uint32 lineage;
        if (a.status != AgentStatus.Active && a.status != AgentStatus.Paused) {
            // new, or re-added after a revocation or rotation: a new lineage, nothing comes back
            uint256 cw = _sload(_configSlot());
            uint256 count = (cw >> CW_AGENT_COUNT) & 0xff;
            if (count >= MAX_AGENTS) revert TooManyAgents(MAX_AGENTS);
            uint256 next = ((cw >> CW_LINEAGE_COUNT) & MASK_32) + 1;
            if (next > MASK_32) revert CounterOverflow();
            lineage = uint32(next);
            cw = (cw & ~((0xff << CW_AGENT_COUNT) | (MASK_32 << CW_LINEAGE_COUNT))) | ((count + 1) << CW_AGENT_COUNT)
                | (next << CW_LINEAGE_COUNT);
            _sstore(_configSlot(), cw);
            l.agentAt[count] = agent;
            l.agents[agent] = Agent({
                status: AgentStatus.Active,
                options: useAllowlist ? OPT_ALLOWLIST : 0,
                validAfter: validAfter,
                validUntil: validUntil,
                openRequests: 0,
                lineage: lineage,
                position: uint8(count + 1),
                tokenCount: 0,
                tokens: 0,
                freeSlot: 0
            });
        } else {
            // re-configured (and active again); a sub-agent's window stays inside its parent's
            if (a.options & OPT_SUB != 0) {
                _checkWindowWithin(l.agents[l.parentOf[agent]], validAfter, validUntil);
            }
            a.status = AgentStatus.Active;
            a.validAfter = validAfter;
            a.validUntil = validUntil;
            a.options = (a.options & OPT_SUB) | (useAllowlist ? OPT_ALLOWLIST : 0);
            _setFlags(agent, a, _flags(a, l.config.paused));
            lineage = a.lineage;
        }
        emit AgentConfigured(agent, lineage, validAfter, validUntil, useAllowlist, _executing());
    }

    /// @inheritdoc IAgentVaultConfig
    function unpauseAgent(address agent) external onlyDelegateCall onlyVault {
        Agent storage a = _liveAgent(agent);
        if (a.status != AgentStatus.Paused) revert AgentNotActive(agent, a.status);
        a.status = AgentStatus.Active;
        _setFlags(agent, a, _flags(a, _layout().config.paused));
        emit AgentStatusChanged(agent, AgentStatus.Active, address(this), _executing());
    }

    /// @inheritdoc IAgentVaultConfig
    function setLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance, uint32 period)
        external
        onlyDelegateCall
        onlyVault
    {
        _setLimits(agent, token, maxPerPayment, allowance, period, address(this));
    }

    function _setLimits(
        address agent,
        address token,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period,
        address by
    ) private {
        Agent storage a = _liveAgent(agent);
        if (maxPerPayment > PolicyWord.MAX_LIMIT) revert LimitTooLarge(maxPerPayment, PolicyWord.MAX_LIMIT);
        if (allowance > PolicyWord.MAX_LIMIT) revert LimitTooLarge(allowance, PolicyWord.MAX_LIMIT);
        if (period == 0 || period > PolicyWord.MAX_PERIOD) revert InvalidPeriod(period);
        Layout storage l = _layout();
        uint256 sub = 0;
        if (a.options & OPT_SUB != 0) {
            _checkAttenuated(l.parentOf[agent], token, maxPerPayment, allowance, period);
            sub = PolicyWord.SUB;
        }
        uint256 word = l.policies[agent][token];
        if (!PolicyWord.inScope(word)) _addToken(agent, a, token);
        // RBUDGET stays with the word (revocation clears it; the same lineage keeps its budgets)
        uint256 updated = PolicyWord.rewrite(word, maxPerPayment, allowance, period)
            | _flagsOf(_sload(_agentSlot(agent)), _sload(_configSlot())) | sub | (word & PolicyWord.RBUDGET);
        l.policies[agent][token] = updated;
        emit LimitsChanged(
            agent,
            token,
            maxPerPayment,
            allowance,
            period,
            PolicyWord.available(updated),
            by,
            _executing()
        );
    }

    /// @inheritdoc IAgentVaultConfig
    function allowRecipient(address agent, address recipient) external onlyDelegateCall onlyVault {
        _allowRecipient(agent, recipient, address(this));
    }

    function _allowRecipient(address agent, address recipient, address by) private {
        Agent storage a = _liveAgent(agent);
        if (recipient == address(0)) revert ZeroAddress();
        _layout().allowlist[a.lineage][recipient] = true;
        emit RecipientChanged(agent, recipient, true, by, _executing());
    }

    /// @inheritdoc IAgentVaultConfig
    function unpause() external onlyDelegateCall onlyVault {
        Layout storage l = _layout();
        l.config.paused = false;
        _syncOwners();
        uint256 n = l.config.agentCount;
        for (uint256 i = 0; i < n; ++i) {
            address agent = l.agentAt[i];
            Agent storage a = l.agents[agent];
            _setFlags(agent, a, _flags(a, false));
        }
        emit VaultUnpaused(_executing());
    }

    /// @inheritdoc IAgentVaultConfig
    function replaceAgentKey(address oldKey, address newKey) external onlyDelegateCall onlyVault {
        _rotate(oldKey, newKey, address(this));
    }

    // ------------------------------------------------------------------------------------------
    // Sub-agents: an agent delegates a narrower scope; the owners may act for it
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultConfig
    function addSubAgent(address parent, address child, uint40 validAfter, uint40 validUntil, bool useAllowlist)
        external
        onlyDelegateCall
    {
        Layout storage l = _layout();
        Agent memory p = _delegator(parent);
        if (_depth(parent) + 1 > MAX_DEPTH) revert TooDeep(MAX_DEPTH);
        if (l.children[p.lineage].length >= MAX_CHILDREN) revert TooManySubAgents(parent, MAX_CHILDREN);
        _checkWindowWithin(p, validAfter, validUntil);
        AgentStatus status = l.agents[child].status;
        if (status == AgentStatus.Active || status == AgentStatus.Paused) revert InvalidNewKey(child);
        _addAgent(child, validAfter, validUntil, useAllowlist);
        l.agents[child].options |= OPT_SUB;
        l.parentOf[child] = parent;
        l.children[p.lineage].push(child);
        emit SubAgentAdded(parent, child, l.agents[child].lineage, _by());
    }

    /// @inheritdoc IAgentVaultConfig
    function setSubAgentLimits(address child, address token, uint256 maxPerPayment, uint256 allowance, uint32 period)
        external
        onlyDelegateCall
    {
        _delegator(_layout().parentOf[child]);
        _setLimits(child, token, maxPerPayment, allowance, period, _by());
    }

    /// @inheritdoc IAgentVaultConfig
    function allowSubAgentRecipient(address child, address recipient) external onlyDelegateCall {
        _delegator(_layout().parentOf[child]);
        _allowRecipient(child, recipient, _by());
    }

    // ------------------------------------------------------------------------------------------
    // Per-recipient budgets
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultConfig
    function limitRecipient(
        address agent,
        address token,
        address recipient,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period
    ) external onlyDelegateCall {
        _onlyOwnerOrAncestor(agent);
        Agent storage a = _liveAgent(agent);
        mapping(address => uint256) storage budgets = _layout().recipientBudgets[a.lineage][token];
        uint256 current = budgets[recipient];
        if (!PolicyWord.inScope(current) && recipient != address(0)) current = budgets[address(0)];
        if (PolicyWord.inScope(current)) {
            // only tighter than what applies now
            if (
                maxPerPayment > PolicyWord.maxPerPayment(current) || allowance > PolicyWord.allowance(current)
                    || allowance * PolicyWord.period(current) > PolicyWord.allowance(current) * period
            ) revert LimitNotReduced(PolicyWord.allowance(current), allowance);
        }
        _setRecipientBudget(agent, a.lineage, token, recipient, maxPerPayment, allowance, period);
    }

    /// @inheritdoc IAgentVaultConfig
    function setRecipientBudget(
        address agent,
        address token,
        address recipient,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period
    ) external onlyDelegateCall onlyVault {
        Agent storage a = _liveAgent(agent);
        _setRecipientBudget(agent, a.lineage, token, recipient, maxPerPayment, allowance, period);
    }

    /// @inheritdoc IAgentVaultConfig
    function removeRecipientBudget(address agent, address token, address recipient) external onlyDelegateCall onlyVault {
        Agent storage a = _liveAgent(agent);
        mapping(address => uint256) storage budgets = _layout().recipientBudgets[a.lineage][token];
        budgets[recipient] = PolicyWord.unscope(budgets[recipient]);
        emit RecipientBudgetChanged(agent, token, recipient, 0, 0, 0, address(this), _executing());
    }

    // ------------------------------------------------------------------------------------------
    // Internals: agents, tokens, owners
    // ------------------------------------------------------------------------------------------

    /// @dev An agent key that was ever added (any status).
    function _knownAgent(address agent) private view returns (Agent storage a) {
        a = _layout().agents[agent];
        if (a.status == AgentStatus.None) revert UnknownAgent(agent);
    }

    /// @dev An agent key that is active or paused.
    function _liveAgent(address agent) private view returns (Agent storage a) {
        a = _knownAgent(agent);
        if (a.status != AgentStatus.Active && a.status != AgentStatus.Paused) revert AgentNotActive(agent, a.status);
    }

    /// @dev Writes `flags` into every policy word of `agent` (at most MAX_TOKENS_PER_AGENT).
    function _setFlags(address agent, Agent storage a, uint256 flags) private {
        Agent memory m = a;
        mapping(address => uint256) storage policies = _layout().policies[agent];
        for (uint256 i = 0; i < m.tokenCount; ++i) {
            address token = _tokenOf(m, i);
            uint256 word = policies[token];
            uint256 updated = PolicyWord.withFlags(word, flags);
            if (updated != word) policies[token] = updated;
        }
    }

    /// @dev Adds `token` to an agent's token set, registering it in the vault's token registry.
    function _addToken(address agent, Agent storage a, address token) private {
        Layout storage l = _layout();
        uint256 index = token == address(0) ? 0 : l.tokenIndex[token]; // ETH is index 0, unstored
        if (index == 0 && token != address(0)) {
            index = uint256(l.config.tokenCount) + 1;
            if (index > MAX_TOKENS) revert TooManyTokens(address(0), MAX_TOKENS);
            l.config.tokenCount = uint8(index);
            l.tokenIndex[token] = index;
            l.tokenAt[index] = token;
        }
        uint256 count = a.tokenCount;
        if (count >= MAX_TOKENS_PER_AGENT) revert TooManyTokens(agent, MAX_TOKENS_PER_AGENT);
        a.tokens = uint64(uint256(a.tokens) | (index << (8 * count)));
        a.tokenCount = uint8(count + 1);
    }

    function _dropToken(Agent storage a, address token) private {
        uint256 index = _layout().tokenIndex[token];
        uint256 tokens = a.tokens;
        uint256 last = a.tokenCount - 1;
        for (uint256 i = 0; i <= last; ++i) {
            if ((tokens >> (8 * i)) & 0xff == index) {
                uint256 moved = (tokens >> (8 * last)) & 0xff;
                tokens &= ~(uint256(0xff) << (8 * i));
                tokens |= moved << (8 * i);
                tokens &= ~(uint256(0xff) << (8 * last));
                a.tokens = uint64(tokens);
                a.tokenCount = uint8(last);
                return;
            }
        }
    }

    /// @dev Removes the agent at 1-based `position` from the agent list (swap with the last).
    function _unlist(uint256 position) private {
        Layout storage l = _layout();
        uint256 last = uint256(l.config.agentCount) - 1;
        if (position - 1 != last) {
            address moved = l.agentAt[last];
            l.agentAt[position - 1] = moved;
            l.agents[moved].position = uint8(position);
        }
        delete l.agentAt[last];
        l.config.agentCount = uint8(last);
    }

    /// @dev Moves an agent's rights from `oldKey` to `newKey`: every policy word the old key holds,
    /// in scope or not (a removed token's word keeps its spent budget, which must follow the key),
    /// so it reads the whole token registry (at most 1 + MAX_TOKENS words).
    function _rotate(address oldKey, address newKey, address by) private {
        Layout storage l = _layout();
        Agent storage a = _liveAgent(oldKey);
        if (
            newKey == address(0) || newKey == address(this) || newKey == SENTINEL || _isOwner(newKey)
                || l.agents[newKey].status != AgentStatus.None
        ) revert InvalidNewKey(newKey);
        Agent memory m = a;
        l.agents[newKey] = m;
        l.agentAt[m.position - 1] = newKey;
        mapping(address => uint256) storage from = l.policies[oldKey];
        mapping(address => uint256) storage to = l.policies[newKey];
        uint256 registered = l.config.tokenCount;
        for (uint256 i = 0; i <= registered; ++i) {
            address token = i == 0 ? address(0) : l.tokenAt[i]; // ETH is index 0, unstored
            uint256 word = from[token];
            if (word == 0) continue;
            to[token] = word; // a new key holds no word yet (its status was None)
            if (PolicyWord.inScope(word)) from[token] = PolicyWord.unscope(word);
        }
        a.status = AgentStatus.Rotated;
        a.position = 0;
        a.tokenCount = 0;
        a.tokens = 0;
        a.openRequests = 0;
        a.freeSlot = 0;
        l.lineageKey[m.lineage] = newKey;
        // the delegation tree follows the key: its place under its parent, its sub-agents' parent
        address parent = l.parentOf[oldKey];
        if (parent != address(0)) {
            l.parentOf[newKey] = parent;
            delete l.parentOf[oldKey];
            _replaceChild(l.agents[parent].lineage, oldKey, newKey);
        }
        address[] storage kids = l.children[m.lineage];
        for (uint256 i = 0; i < kids.length; ++i) {
            l.parentOf[kids[i]] = newKey;
        }
        emit AgentRotated(oldKey, newKey, m.lineage, by);
    }

    function _requireSigner(bytes32 digest, bytes calldata signature, address expected) private pure {
        // slither-disable-next-line unused-return (the third value only details `error`)
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, signature);
        if (error != ECDSA.RecoverError.NoError || signer != expected) revert InvalidSignature(expected);
    }

    /// @dev Ends an agent and, first, every sub-agent under it (depth <= MAX_DEPTH). `detach`: also
    /// take it out of its parent's list (not needed when the parent goes too).
    function _revoke(address agent, bool detach) private {
        Layout storage l = _layout();
        Agent storage a = l.agents[agent];
        uint32 lineage = a.lineage;
        address[] storage kids = l.children[lineage];
        for (uint256 i = kids.length; i > 0; --i) {
            _revoke(kids[i - 1], false);
        }
        delete l.children[lineage];
        Agent memory m = a;
        // the budget state stays in each word (see PolicyWord.rewrite); scope and every flag go
        for (uint256 i = 0; i < m.tokenCount; ++i) {
            address token = _tokenOf(m, i);
            l.policies[agent][token] = PolicyWord.retire(l.policies[agent][token]);
        }
        _unlist(a.position);
        a.options &= ~OPT_SUB; // no longer anyone's sub-agent
        a.status = AgentStatus.Revoked;
        a.position = 0;
        a.tokenCount = 0;
        a.tokens = 0;
        a.openRequests = 0;
        a.freeSlot = 0;
        address parent = l.parentOf[agent];
        if (parent != address(0)) {
            if (detach) _replaceChild(l.agents[parent].lineage, agent, address(0));
            delete l.parentOf[agent];
        }
        emit AgentStatusChanged(agent, AgentStatus.Revoked, msg.sender, 0);
        if (m.openRequests != 0) emit OpenRequestsClosed(agent, lineage, m.openRequests);
    }

    /// @dev In `lineage`'s list of sub-agents, replace `key` by `replacement` (0: remove it).
    function _replaceChild(uint32 lineage, address key, address replacement) private {
        address[] storage kids = _layout().children[lineage];
        uint256 n = kids.length;
        for (uint256 i = 0; i < n; ++i) {
            if (kids[i] == key) {
                if (replacement != address(0)) {
                    kids[i] = replacement;
                } else {
                    kids[i] = kids[n - 1];
                    kids.pop();
                }
                return;
            }
        }
    }

    /// @dev Reverts unless the window [validAfter, validUntil] lies inside the parent's.
    function _checkWindowWithin(Agent memory p, uint40 validAfter, uint40 validUntil) private pure {
        if (validAfter < p.validAfter || (p.validUntil != 0 && (validUntil == 0 || validUntil > p.validUntil))) {
            revert InvalidValidity(validAfter, validUntil);
        }
    }

    /// @dev How many agents are above `agent`.
    function _depth(address agent) private view returns (uint256 depth) {
        Layout storage l = _layout();
        for (address key = l.parentOf[agent]; key != address(0); key = l.parentOf[key]) {
            ++depth;
        }
    }

    /// @dev Reverts unless limits are within the parent's in `token`: in scope there, a per-payment
    /// limit and an allowance no larger, and a refill rate no faster.
    function _checkAttenuated(address parent, address token, uint256 maxPerPayment, uint256 allowance, uint256 period)
        private
        view
    {
        uint256 word = _layout().policies[parent][token];
        if (
            !PolicyWord.inScope(word) || maxPerPayment > PolicyWord.maxPerPayment(word)
                || allowance > PolicyWord.allowance(word)
                || allowance * PolicyWord.period(word) > PolicyWord.allowance(word) * period
        ) revert ExceedsParent(parent, token);
    }


    function _setRecipientBudget(
        address agent,
        uint32 lineage,
        address token,
        address recipient,
        uint256 maxPerPayment,
        uint256 allowance,
        uint32 period
    ) private {
        if (maxPerPayment > PolicyWord.MAX_LIMIT) revert LimitTooLarge(maxPerPayment, PolicyWord.MAX_LIMIT);
        if (allowance > PolicyWord.MAX_LIMIT) revert LimitTooLarge(allowance, PolicyWord.MAX_LIMIT);
        if (period == 0 || period > PolicyWord.MAX_PERIOD) revert InvalidPeriod(period);
        Layout storage l = _layout();
        uint256 word = l.policies[agent][token];
        if (!PolicyWord.inScope(word)) revert TokenNotInScope(agent, token);
        if (word & PolicyWord.RBUDGET == 0) l.policies[agent][token] = word | PolicyWord.RBUDGET;
        mapping(address => uint256) storage budgets = l.recipientBudgets[lineage][token];
        budgets[recipient] = PolicyWord.rewrite(budgets[recipient], maxPerPayment, allowance, period);
        emit RecipientBudgetChanged(agent, token, recipient, maxPerPayment, allowance, period, _by(), _executing());
    }

    /// @dev Forwarding, too, happens only inside a vault.
    function _fallback() internal override onlyDelegateCall {
        super._fallback();
    }

    /// @dev Scoped-call grants and requests, then the views, run further down (OpenZeppelin's Proxy).
    function _implementation() internal view override returns (address) {
        return CALLS;
    }
}
