// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Forwarder} from "./base/Forwarder.sol";
import {IAgentVaultConfig} from "./interfaces/IAgentVaultConfig.sol";
import {AgentVaultStorage} from "./base/AgentVaultStorage.sol";
import {PolicyWord} from "./libraries/PolicyWord.sol";

/// @title AgentVaultConfig
/// @notice Agents, limits, owners, the brakes and key rotation of a vault. Runs only by
/// delegatecall from the vault's admin extension, in the vault's storage; every selector not here
/// (the views) goes on, the same way, to {AgentVaultLens}.
/// @dev Reducing risk (pause, pause or revoke an agent, lower a limit, remove a token or a
/// recipient, switch the allowlist on) is one owner's call; adding risk runs only as a call of the
/// vault on itself, i.e. through governance ({IAgentVaultAdmin}).
contract AgentVaultConfig is IAgentVaultConfig, AgentVaultStorage, Forwarder {
    /// @notice The lens every selector not here is forwarded to.
    address private immutable LENS;

    constructor(address lens) {
        if (lens.code.length == 0) revert ZeroAddress();
        LENS = lens;
    }

    // ------------------------------------------------------------------------------------------
    // Risk-reducing actions: one owner
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultConfig
    function pause() external onlyDelegateCall onlyOwner {
        Layout storage l = _layout();
        l.config.paused = true;
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
    function revokeAgent(address agent) external onlyDelegateCall onlyOwner {
        Layout storage l = _layout();
        Agent storage a = _liveAgent(agent);
        Agent memory m = a;
        // the budget state stays in each word (see PolicyWord.rewrite); scope and flags go
        for (uint256 i = 0; i < m.tokenCount; ++i) {
            address token = _tokenOf(m, i);
            l.policies[agent][token] = PolicyWord.unscope(l.policies[agent][token]);
        }
        _unlist(m.position);
        a.status = AgentStatus.Revoked;
        a.position = 0;
        a.tokenCount = 0;
        a.tokens = 0;
        a.openRequests = 0;
        a.freeSlot = 0;
        emit AgentStatusChanged(agent, AgentStatus.Revoked, msg.sender, 0);
        if (m.openRequests != 0) emit OpenRequestsClosed(agent, m.lineage, m.openRequests);
    }

    /// @inheritdoc IAgentVaultConfig
    function reduceLimits(address agent, address token, uint256 maxPerPayment, uint256 allowance)
        external
        onlyDelegateCall
        onlyOwner
    {
        _knownAgent(agent);
        Layout storage l = _layout();
        uint256 word = l.policies[agent][token];
        if (!PolicyWord.inScope(word)) revert TokenNotInScope(agent, token);
        uint256 currentMax = PolicyWord.maxPerPayment(word);
        uint256 currentAllowance = PolicyWord.allowance(word);
        if (maxPerPayment > currentMax) revert LimitNotReduced(currentMax, maxPerPayment);
        if (allowance > currentAllowance) revert LimitNotReduced(currentAllowance, allowance);
        uint256 period = PolicyWord.period(word);
        uint256 updated =
            PolicyWord.rewrite(word, maxPerPayment, allowance, period) | (word & PolicyWord.FLAGS);
        l.policies[agent][token] = updated;
        emit LimitsChanged(
            agent, token, maxPerPayment, allowance, uint32(period), PolicyWord.available(updated), msg.sender, 0
        );
    }

    /// @inheritdoc IAgentVaultConfig
    function removeToken(address agent, address token) external onlyDelegateCall onlyOwner {
        Agent storage a = _knownAgent(agent);
        Layout storage l = _layout();
        uint256 word = l.policies[agent][token];
        if (!PolicyWord.inScope(word)) revert TokenNotInScope(agent, token);
        l.policies[agent][token] = PolicyWord.unscope(word);
        _dropToken(a, token);
        emit LimitsChanged(agent, token, 0, 0, 0, 0, msg.sender, 0);
    }

    /// @inheritdoc IAgentVaultConfig
    function removeRecipient(address agent, address recipient) external onlyDelegateCall onlyOwner {
        Agent storage a = _knownAgent(agent);
        _layout().allowlist[a.lineage][recipient] = false;
        emit RecipientChanged(agent, recipient, false, msg.sender, 0);
    }

    /// @inheritdoc IAgentVaultConfig
    function enforceAllowlist(address agent) external onlyDelegateCall onlyOwner {
        Agent storage a = _knownAgent(agent);
        a.useAllowlist = true;
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
                useAllowlist: useAllowlist,
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
            // re-configured (and active again)
            a.status = AgentStatus.Active;
            a.validAfter = validAfter;
            a.validUntil = validUntil;
            a.useAllowlist = useAllowlist;
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
        Agent storage a = _liveAgent(agent);
        if (maxPerPayment > PolicyWord.MAX_LIMIT) revert LimitTooLarge(maxPerPayment, PolicyWord.MAX_LIMIT);
        if (allowance > PolicyWord.MAX_LIMIT) revert LimitTooLarge(allowance, PolicyWord.MAX_LIMIT);
        if (period == 0 || period > PolicyWord.MAX_PERIOD) revert InvalidPeriod(period);
        Layout storage l = _layout();
        uint256 word = l.policies[agent][token];
        if (!PolicyWord.inScope(word)) _addToken(agent, a, token);
        uint256 updated = PolicyWord.rewrite(word, maxPerPayment, allowance, period)
            | _flagsOf(_sload(_agentSlot(agent)), _sload(_configSlot()));
        l.policies[agent][token] = updated;
        emit LimitsChanged(
            agent,
            token,
            maxPerPayment,
            allowance,
            period,
            PolicyWord.available(updated),
            address(this),
            _executing()
        );
    }

    /// @inheritdoc IAgentVaultConfig
    function allowRecipient(address agent, address recipient) external onlyDelegateCall onlyVault {
        Agent storage a = _liveAgent(agent);
        if (recipient == address(0)) revert ZeroAddress();
        _layout().allowlist[a.lineage][recipient] = true;
        emit RecipientChanged(agent, recipient, true, address(this), _executing());
    }

    /// @inheritdoc IAgentVaultConfig
    function unpause() external onlyDelegateCall onlyVault {
        Layout storage l = _layout();
        l.config.paused = false;
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

    /// @dev Moves an agent's rights from `oldKey` to `newKey` (at most MAX_TOKENS_PER_AGENT words).
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
        for (uint256 i = 0; i < m.tokenCount; ++i) {
            address token = _tokenOf(m, i);
            uint256 word = l.policies[oldKey][token];
            l.policies[newKey][token] = word;
            l.policies[oldKey][token] = PolicyWord.unscope(word);
        }
        a.status = AgentStatus.Rotated;
        a.position = 0;
        a.tokenCount = 0;
        a.tokens = 0;
        a.openRequests = 0;
        a.freeSlot = 0;
        l.lineageKey[m.lineage] = newKey;
        emit AgentRotated(oldKey, newKey, m.lineage, by);
    }

    function _requireSigner(bytes32 digest, bytes calldata signature, address expected) private pure {
        // slither-disable-next-line unused-return (the third value only details `error`)
        (address signer, ECDSA.RecoverError error,) = ECDSA.tryRecover(digest, signature);
        if (error != ECDSA.RecoverError.NoError || signer != expected) revert InvalidSignature(expected);
    }

    /// @dev Forwarding, too, happens only inside a vault.
    function _fallback() internal override onlyDelegateCall {
        super._fallback();
    }

    /// @dev Views and digests run in the lens (OpenZeppelin's Proxy).
    function _implementation() internal view override returns (address) {
        return LENS;
    }
}
