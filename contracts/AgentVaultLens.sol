// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IAgentVaultLens} from "./interfaces/IAgentVaultLens.sol";
import {AgentVaultStorage} from "./base/AgentVaultStorage.sol";
import {PolicyWord} from "./libraries/PolicyWord.sol";

/// @title AgentVaultLens
/// @notice Read-only views of a vault, its EIP-712 digests and the payment dry run. Runs by
/// delegatecall from the vault's admin extension, in the vault's storage; it writes nothing.
contract AgentVaultLens is IAgentVaultLens, AgentVaultStorage {
    /// @inheritdoc IAgentVaultLens
    function getOwners() external view returns (address[] memory owners) {
        Layout storage l = _layout();
        owners = new address[](l.config.ownerCount);
        address current = address(uint160(l.owners[SENTINEL]));
        for (uint256 i = 0; current != SENTINEL; ++i) {
            owners[i] = current;
            current = address(uint160(l.owners[current]));
        }
    }

    /// @inheritdoc IAgentVaultLens
    function isOwner(address account) external view returns (bool) {
        return _isOwner(account);
    }

    /// @inheritdoc IAgentVaultLens
    function threshold() external view returns (uint256) {
        return _layout().config.threshold;
    }

    /// @inheritdoc IAgentVaultLens
    function paused() external view returns (bool) {
        return _layout().config.paused;
    }

    /// @inheritdoc IAgentVaultLens
    function requestExpiry() external view returns (uint256) {
        return _layout().config.requestExpiry;
    }

    /// @inheritdoc IAgentVaultLens
    function maxOpenRequests() external view returns (uint256) {
        return _layout().config.maxOpenRequests;
    }

    /// @inheritdoc IAgentVaultLens
    function requestCount() external view returns (uint256) {
        return _layout().config.requestCount;
    }

    /// @inheritdoc IAgentVaultLens
    function getAgent(address agent) external view returns (AgentInfo memory) {
        Agent memory a = _layout().agents[agent];
        return AgentInfo({
            status: a.status,
            useAllowlist: a.options & OPT_ALLOWLIST != 0,
            validAfter: a.validAfter,
            validUntil: a.validUntil,
            openRequests: a.openRequests,
            lineage: a.lineage,
            parent: _layout().parentOf[agent]
        });
    }

    /// @inheritdoc IAgentVaultLens
    function getAgents() external view returns (address[] memory agents) {
        Layout storage l = _layout();
        agents = new address[](l.config.agentCount);
        for (uint256 i = 0; i < agents.length; ++i) {
            agents[i] = l.agentAt[i];
        }
    }

    /// @inheritdoc IAgentVaultLens
    function getAgentTokens(address agent) external view returns (address[] memory tokens) {
        Agent memory a = _layout().agents[agent];
        tokens = new address[](a.tokenCount);
        for (uint256 i = 0; i < tokens.length; ++i) {
            tokens[i] = _tokenOf(a, i);
        }
    }

    /// @inheritdoc IAgentVaultLens
    function getPolicy(address agent, address token) external view returns (PolicyView memory p) {
        uint256 word = _layout().policies[agent][token];
        if (!PolicyWord.inScope(word)) return p;
        p.maxPerPayment = PolicyWord.maxPerPayment(word);
        p.allowance = PolicyWord.allowance(word);
        p.period = uint32(PolicyWord.period(word));
        p.available = PolicyWord.budget(word);
    }

    /// @inheritdoc IAgentVaultLens
    function isRecipientAllowed(address agent, address recipient) external view returns (bool) {
        Layout storage l = _layout();
        Agent storage a = l.agents[agent];
        return _alive(a, a.lineage) && l.allowlist[a.lineage][recipient];
    }

    /// @inheritdoc IAgentVaultLens
    function getSubAgents(address agent) external view returns (address[] memory) {
        Layout storage l = _layout();
        Agent storage a = l.agents[agent];
        if (!_alive(a, a.lineage)) return new address[](0);
        return l.children[a.lineage];
    }

    /// @inheritdoc IAgentVaultLens
    function getRecipientBudget(address agent, address token, address recipient)
        external
        view
        returns (PolicyView memory p)
    {
        Layout storage l = _layout();
        uint32 lineage = l.agents[agent].lineage;
        mapping(address => uint256) storage budgets = l.recipientBudgets[lineage][token];
        uint256 word = budgets[recipient];
        if (!PolicyWord.inScope(word)) {
            uint256 fallbackBudget = recipient == address(0) ? 0 : budgets[address(0)];
            if (!PolicyWord.inScope(fallbackBudget)) return p;
            word = (fallbackBudget & ~PolicyWord.TAT_MASK) | (word & PolicyWord.TAT_MASK);
        }
        p.maxPerPayment = PolicyWord.maxPerPayment(word);
        p.allowance = PolicyWord.allowance(word);
        p.period = uint32(PolicyWord.period(word));
        p.available = PolicyWord.budget(word);
    }

    /// @inheritdoc IAgentVaultLens
    function getCallPermission(address agent, address target, bytes4 selector)
        external
        view
        returns (PolicyView memory p)
    {
        Layout storage l = _layout();
        uint256 word = l.callPermissions[l.agents[agent].lineage][target][selector];
        if (!PolicyWord.inScope(word)) return p;
        p.maxPerPayment = PolicyWord.maxPerPayment(word);
        p.allowance = PolicyWord.allowance(word);
        p.period = uint32(PolicyWord.period(word));
        p.available = PolicyWord.budget(word);
    }

    /// @inheritdoc IAgentVaultLens
    function callRequestDigest(CallRequest calldata request) external view returns (bytes32) {
        return _hashTypedDataV4(_hashCall(request));
    }

    /// @inheritdoc IAgentVaultLens
    function callStatus(CallRequest calldata request) external view returns (RequestStatus status) {
        uint256 record = _layout().requests[request.slot];
        status = _status(request.id, record, _hashCall(request), request.expiresAt);
        if (record >> PENDING_SHIFT != 0 && (status == RequestStatus.Pending || status == RequestStatus.Expired)) {
            (,, bool alive) = _requestAgentWord(request.agent, request.lineage);
            if (!alive) status = RequestStatus.AgentRevoked;
        }
    }

    /// @inheritdoc IAgentVaultLens
    function currentKey(address key) external view returns (address) {
        Layout storage l = _layout();
        Agent storage a = l.agents[key];
        return a.status == AgentStatus.Rotated ? l.lineageKey[a.lineage] : key;
    }

    /// @inheritdoc IAgentVaultLens
    function paymentStatus(PaymentRequest calldata request) external view returns (RequestStatus status) {
        uint256 record = _layout().requests[request.slot];
        status = _status(request.id, record, _hashPayment(request), request.expiresAt);
        if (record >> PENDING_SHIFT != 0 && (status == RequestStatus.Pending || status == RequestStatus.Expired)) {
            (,, bool alive) = _requestAgentWord(request.agent, request.lineage);
            if (!alive) status = RequestStatus.AgentRevoked;
        }
    }

    /// @inheritdoc IAgentVaultLens
    function proposalStatus(GovernanceProposal calldata proposal) external view returns (RequestStatus) {
        return _status(proposal.id, _layout().requests[proposal.id], _hashProposal(proposal), proposal.expiresAt);
    }

    /// @inheritdoc IAgentVaultLens
    function approvalCount(uint256 requestId) external view returns (uint256 approvals) {
        (approvals,) = _countVotes(requestId);
    }

    /// @inheritdoc IAgentVaultLens
    function rejectionCount(uint256 requestId) external view returns (uint256 rejections) {
        (, rejections) = _countVotes(requestId);
    }

    /// @inheritdoc IAgentVaultLens
    function hasApproved(uint256 requestId, address owner) external view returns (bool) {
        uint256 word = _layout().owners[owner];
        return owner != SENTINEL && word != 0 && _layout().votes[requestId][owner] == _approvalOf(word);
    }

    /// @inheritdoc IAgentVaultLens
    function paymentRequestDigest(PaymentRequest calldata request) external view returns (bytes32) {
        return _hashTypedDataV4(_hashPayment(request));
    }

    /// @inheritdoc IAgentVaultLens
    function proposalDigest(GovernanceProposal calldata proposal) external view returns (bytes32) {
        return _hashTypedDataV4(_hashProposal(proposal));
    }

    /// @inheritdoc IAgentVaultLens
    function signedPaymentDigest(SignedPayment calldata payment) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(SIGNED_PAYMENT_TYPEHASH, payment)));
    }

    /// @inheritdoc IAgentVaultLens
    function intentDigest(Intent calldata intent) external view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(INTENT_TYPEHASH, intent)));
    }

    /// @inheritdoc IAgentVaultLens
    function governanceDigest(bytes[] calldata calls, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        bytes32[] memory hashes = new bytes32[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            hashes[i] = keccak256(calls[i]);
        }
        return _hashTypedDataV4(
            keccak256(abi.encode(GOVERNANCE_TYPEHASH, keccak256(abi.encodePacked(hashes)), nonce, deadline))
        );
    }

    /// @inheritdoc IAgentVaultLens
    function rotationDigest(address oldKey, address newKey, uint256 nonce, uint256 deadline)
        external
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(keccak256(abi.encode(ROTATE_TYPEHASH, oldKey, newKey, nonce, deadline)));
    }

    /// @inheritdoc IAgentVaultLens
    function isNonceUsed(address space, uint256 nonce) external view returns (bool) {
        return (_layout().nonces[space][nonce >> 8] >> (nonce & 0xff)) & 1 == 1;
    }

    /// @inheritdoc IAgentVaultLens
    function nonceBitmap(address space, uint256 wordPos) external view returns (uint256) {
        return _layout().nonces[space][wordPos];
    }

    /// @inheritdoc IAgentVaultLens
    function paymentNonceSpace() external pure returns (address) {
        return PAYMENT_SPACE;
    }

    /// @inheritdoc IAgentVaultLens
    function governanceNonceSpace() external pure returns (address) {
        return GOVERNANCE_SPACE;
    }

    /// @dev A request's status from its record (see AgentVaultStorage.BLOCK_MASK).
    function _status(uint256 id, uint256 record, bytes32 structHash, uint40 expiresAt)
        private
        view
        returns (RequestStatus)
    {
        bool pending = record >> PENDING_SHIFT != 0;
        if (pending && (record ^ uint256(structHash)) >> 40 == 0) {
            return block.timestamp > expiresAt ? RequestStatus.Expired : RequestStatus.Pending;
        }
        if (!pending && record != 0 && (record >> 40) & type(uint64).max == id) return RequestStatus(record & 0xff);
        // the slot holds something else: a later request (ours closed), or `request` was never made
        return id != 0 && id <= _layout().config.requestCount ? RequestStatus.Closed : RequestStatus.None;
    }

    /// @inheritdoc IAgentVaultLens
    function checkPayment(address agent, address token, address to, uint256 amount)
        external
        view
        returns (uint32 reasons)
    {
        Layout storage l = _layout();
        uint256 word = l.policies[agent][token];
        // slither-disable-next-line unused-return (a dry run: the consumed word is not needed)
        (reasons,) = PolicyWord.evaluate(word, amount);
        Agent storage a = l.agents[agent];
        if (a.options & OPT_ALLOWLIST != 0 && !l.allowlist[a.lineage][to]) {
            reasons |= PolicyWord.REASON_RECIPIENT_NOT_ALLOWED;
        }
        if (reasons == 0 && word & (PolicyWord.SUB | PolicyWord.RBUDGET) != 0) {
            // slither-disable-next-line uninitialized-local (memory arrays start zeroed; filled by _spendMore)
            uint256[8] memory slots;
            // slither-disable-next-line uninitialized-local
            uint256[8] memory words;
            (reasons,) = _spendMore(agent, token, to, amount, word, slots, words);
        }
    }
}
