// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {Panic} from "@openzeppelin/contracts/utils/Panic.sol";
import {Forwarder} from "./base/Forwarder.sol";
import {IAgentVaultCore} from "./interfaces/IAgentVaultCore.sol";
import {AgentVaultStorage} from "./base/AgentVaultStorage.sol";
import {PolicyWord} from "./libraries/PolicyWord.sol";

/// @title AgentVault (core)
/// @notice Scoped agent spending with escalation to M-of-N human co-signers: the per-payment core.
/// Vaults are EIP-1167 clones of this contract made by {AgentVaultFactory}. Every selector not
/// here goes, by delegatecall in the vault's storage, to the immutable {AgentVaultAdmin} fixed at
/// construction. Immutable: no upgrade path; a new version is a new factory.
/// @dev Invariants (tested in tests/contracts):
/// - Funds leave the vault only through an agent's payment inside its limits (sent by the agent,
///   or relayed from its signature), an executed request that reached the threshold in force at
///   execution, or a payment signed by the threshold of owners.
/// - Per agent and token, direct payments never exceed `allowance` in a burst and never exceed
///   `allowance * (1 + t / period)` over any window of length t; no owner action ever increases
///   what is available at that instant (only time refills a budget).
/// - Every state change emits an event; risk-adding changes carry the id of the request that made
///   them (0 when owners' signatures made them).
/// - An approval counts only while its owner is still the same owner (owner epoch), and only
///   approvals of current owners count toward the current threshold.
contract AgentVault is IAgentVaultCore, AgentVaultStorage, Forwarder {
    using SafeERC20 for IERC20;

    /// @notice The admin extension every other selector is forwarded to.
    address private immutable ADMIN;

    /// @dev {_spendAncestors}: an ancestor needs the general path's checks (not a reasons mask).
    uint256 private constant ANCESTOR_CHECKS = 1 << 255;

    /// @dev Locks the implementation: only clones can be initialised.
    constructor(address admin) {
        if (admin.code.length == 0) revert ZeroAddress();
        ADMIN = admin;
        _layout().config.threshold = type(uint8).max;
    }

    // ------------------------------------------------------------------------------------------
    // Set-up and deposits
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultCore
    function initialize(address[] calldata owners, uint256 threshold_, uint256 requestExpiry_, uint256 maxOpen)
        external
    {
        Layout storage l = _layout();
        if (l.config.threshold != 0) revert AlreadyInitialized();
        uint256 n = owners.length;
        if (n > MAX_OWNERS) revert TooManyOwners(n, MAX_OWNERS);
        if (threshold_ == 0 || threshold_ > n) revert InvalidThreshold(threshold_, n);
        if (requestExpiry_ < MIN_REQUEST_EXPIRY || requestExpiry_ > MAX_REQUEST_EXPIRY) {
            revert InvalidRequestExpiry(requestExpiry_);
        }
        if (maxOpen == 0 || maxOpen > MAX_OPEN_REQUESTS_CAP) revert InvalidMaxOpenRequests(maxOpen);
        address next = SENTINEL;
        uint256 mirror = threshold_ << OW_THRESHOLD; // the config word's threshold (see OW_THRESHOLD)
        // Build the list back to front so each owner's slot is written once.
        for (uint256 i = n; i > 0; --i) {
            address owner = owners[i - 1];
            // No agents exist yet, so only the owner list itself needs checking.
            if (owner == address(0) || owner == SENTINEL || owner == address(this)) revert ZeroAddress();
            if (l.owners[owner] != 0) revert AlreadyOwner(owner);
            l.owners[owner] = uint256(uint160(next)) | (i << OW_EPOCH) | mirror;
            next = owner;
            emit OwnerAdded(owner, 0);
        }
        l.owners[SENTINEL] = uint256(uint160(next));
        l.config = Config({
            threshold: uint8(threshold_),
            ownerCount: uint8(n),
            paused: false,
            agentCount: 0,
            tokenCount: 0,
            requestExpiry: uint32(requestExpiry_),
            maxOpenRequests: uint16(maxOpen),
            lineageCount: 0,
            ownerEpoch: uint64(n),
            requestCount: 0
        });
        emit ThresholdChanged(threshold_, 0);
        emit RequestExpiryChanged(requestExpiry_, 0);
        emit MaxOpenRequestsChanged(maxOpen, 0);
    }

    /// @notice Plain ETH transfers are deposits.
    receive() external payable {
        emit Deposited(msg.sender, address(0), msg.value);
    }

    /// @inheritdoc IAgentVaultCore
    function deposit(address token, uint256 amount) external nonReentrant {
        if (token == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 before = IERC20(token).balanceOf(address(this));
        IERC20(token).safeTransferFrom(msg.sender, address(this), amount);
        emit Deposited(msg.sender, token, IERC20(token).balanceOf(address(this)) - before);
    }

    // ------------------------------------------------------------------------------------------
    // Agents' payments
    // ------------------------------------------------------------------------------------------

    /// @inheritdoc IAgentVaultCore
    function pay(address token, address to, uint256 amount, bytes32 ref)
        external
        nonReentrant
        returns (uint256 requestId)
    {
        uint32 reasons = _pay(msg.sender, token, to, amount, amount, ref);
        if (reasons != 0) return _newPaymentRequest(msg.sender, token, to, amount, ref, reasons);
    }

    /// @inheritdoc IAgentVaultCore
    function payWithIntent(Intent calldata intent, uint256 fee, bytes32 r, bytes32 vs)
        external
        nonReentrant
        returns (uint256 requestId)
    {
        if (fee > intent.maxFee) revert FeeTooHigh(fee, intent.maxFee);
        if (block.timestamp > intent.deadline) revert SignatureExpired(intent.deadline);
        bytes32 typeHash = INTENT_TYPEHASH;
        bytes32 structHash;
        address token;
        address to;
        // The struct is static: its seven words lie at `intent` as the ABI puts them (solc checked
        // the calldata's length), and the signature covers them as they are. The two address
        // words are read at once, and a word with a bit above its 160 is refused as solc's own
        // accessor refuses it (a revert without data); any other changed word recovers a stranger.
        assembly ("memory-safe") {
            let tokenWord := calldataload(intent)
            let toWord := calldataload(add(intent, 0x20))
            if shr(160, or(tokenWord, toWord)) { revert(0, 0) }
            token := tokenWord
            to := toWord
            let p := mload(0x40)
            mstore(p, typeHash)
            calldatacopy(add(p, 0x20), intent, 0xe0)
            structHash := keccak256(p, 0x100)
        }
        // slither-disable-next-line unused-return (tryRecover's signer is 0 whatever its error)
        (address agent,,) = ECDSA.tryRecover(_hashTypedDataV4(structHash), r, vs);
        if (agent == address(0)) revert InvalidSignature(address(0));
        _useNonce(agent, intent.nonce);
        uint256 amount = intent.amount;
        bytes32 ref = intent.ref;
        uint256 charge;
        unchecked {
            charge = amount + fee;
        }
        // the panic solc's checked addition raises, without its out-of-line helper
        if (charge < amount) Panic.panic(Panic.UNDER_OVERFLOW);
        uint32 reasons = _pay(agent, token, to, amount, charge, ref);
        if (reasons != 0) return _newPaymentRequest(agent, token, to, amount, ref, reasons);
        if (fee != 0) {
            _send(token, msg.sender, fee);
            emit RelayFeePaid(agent, token, msg.sender, fee, ref);
        }
    }

    /// @inheritdoc IAgentVaultCore
    function redeemDelegations(
        bytes[] calldata permissionContexts,
        bytes32[] calldata modes,
        bytes[] calldata executionCallDatas
    ) external nonReentrant {
        uint256 n = permissionContexts.length;
        if (modes.length != n || executionCallDatas.length != n) revert LengthMismatch();
        for (uint256 i = 0; i < n; ++i) {
            // ERC-7579 mode: call type single (0x00), exec type default (0x00), no selector or payload
            if (modes[i] != bytes32(0)) revert UnsupportedExecutionMode(modes[i]);
            bytes calldata context = permissionContexts[i];
            (address token, address to, uint256 amount, bytes calldata signature) = _decodeContext(context, i);
            bytes calldata execution = executionCallDatas[i];
            if (execution.length < 52) revert ExecutionMismatch(i);
            address target = address(bytes20(execution[:20]));
            uint256 value = uint256(bytes32(execution[20:52]));
            bytes calldata callData = execution[52:];
            bool exact = token == address(0)
                ? target == to && value == amount && callData.length == 0
                : target == token && value == 0
                    && keccak256(callData) == keccak256(abi.encodeCall(IERC20.transfer, (to, amount)));
            if (!exact) revert ExecutionMismatch(i);
            uint256 deadline = uint256(bytes32(context[160:192]));
            if (block.timestamp > deadline) revert SignatureExpired(deadline);
            bytes32 typeHash = INTENT_TYPEHASH;
            bytes32 structHash;
            // the intent's seven words as they lie in the context (its address words are clean:
            // _decodeContext checked them), which is abi.encode(intent)
            assembly ("memory-safe") {
                let p := mload(0x40)
                mstore(p, typeHash)
                calldatacopy(add(p, 0x20), context.offset, 0xe0)
                structHash := keccak256(p, 0x100)
            }
            address agent = _recoverAgent(structHash, signature, uint256(bytes32(context[128:160])));
            uint32 reasons = _pay(agent, token, to, amount, amount, bytes32(context[96:128]));
            if (reasons != 0) revert PaymentOutsidePolicy(agent, reasons);
        }
    }

    /// @inheritdoc IAgentVaultCore
    function payWithSignatures(SignedPayment calldata payment, bytes calldata signatures) external nonReentrant {
        // the pause and the threshold are read from the first signer's owner word (OW_THRESHOLD)
        if (block.timestamp > payment.deadline) revert SignatureExpired(payment.deadline);
        address to = payment.to;
        uint256 amount = payment.amount;
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        _useNonce(PAYMENT_SPACE, payment.nonce);
        bytes32 typeHash = SIGNED_PAYMENT_TYPEHASH;
        bytes32 structHash;
        // the struct as it lies in calldata (dirty words give another digest: no owner signed it)
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typeHash)
            calldatacopy(add(p, 0x20), payment, 0xe0)
            structHash := keccak256(p, 0x100)
        }
        address[] memory signers =
            _checkPaymentSignatures(_hashTypedDataV4(structHash), signatures);
        address token = payment.token;
        // slither-disable-next-line arbitrary-send-eth (`to` is authorised by threshold owner signatures above)
        _send(token, to, amount);
        emit SignedPaymentExecuted(payment.agent, token, to, amount, payment.ref, signers);
    }

    /// @inheritdoc IAgentVaultCore
    function executePaymentWithSignatures(PaymentRequest calldata request, bytes calldata signatures)
        external
        nonReentrant
    {
        (bytes32 structHash, uint256 agentSlot, uint256 aw) = _openPayment(request);
        address[] memory signers = _checkSignatures(
            _hashTypedDataV4(structHash), signatures, (_sload(_configSlot()) >> CW_THRESHOLD) & 0xff, request.id
        );
        _executePayment(request, agentSlot, aw, signers);
    }

    /// @inheritdoc IAgentVaultCore
    function scopedCall(
        address target,
        uint256 value,
        bytes calldata data,
        address spendToken,
        uint256 spendAmount,
        bytes32 ref
    ) external nonReentrant returns (uint256 requestId) {
        bytes4 selector = data.length >= 4 ? bytes4(data[:4]) : bytes4(0);
        _checkCallTarget(target, selector);
        Layout storage l = _layout();
        if (l.config.paused) revert VaultIsPaused();
        Agent memory a = l.agents[msg.sender];
        _checkAgentCanPay(msg.sender, a);
        // slither-disable-next-line uninitialized-local (memory arrays start zeroed; filled by _spendCall)
        uint256[4] memory slots;
        // slither-disable-next-line uninitialized-local
        uint256[4] memory words;
        (uint32 reasons, uint256 n) = _spendCall(msg.sender, a, target, selector, value, slots, words);
        uint256 tokenWord = 0;
        uint256 tokenSlot = 0;
        if (reasons == 0 && spendAmount != 0) {
            (reasons, tokenWord, tokenSlot) = _evaluatePay(msg.sender, spendToken, target, spendAmount);
        }
        if (reasons != 0) return _newCallRequest(msg.sender, a.lineage, target, value, data, spendToken, spendAmount, ref, reasons);
        for (uint256 i = 0; i < n; ++i) {
            _sstore(slots[i], words[i]);
        }
        if (spendAmount != 0) _sstore(tokenSlot, tokenWord);
        uint256 spent = _runCall(target, value, data, spendToken, spendAmount);
        emit CallExecuted(msg.sender, target, selector, value, spendToken, spent, ref, 0);
    }

    // ------------------------------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------------------------------

    /// @dev A call's permission words, the agent's and (for a sub-agent) every ancestor's: each
    /// must hold the grant and accept `value` (shared, like a sub-agent's budget).
    function _spendCall(
        address agent,
        Agent memory a,
        address target,
        bytes4 selector,
        uint256 value,
        uint256[4] memory slots,
        uint256[4] memory words
    ) private view returns (uint32 reasons, uint256 n) {
        Layout storage l = _layout();
        address key = agent;
        for (uint256 depth = 0; depth <= MAX_DEPTH; ++depth) {
            if (depth != 0) {
                key = l.parentOf[key];
                a = l.agents[key];
                _checkAgentCanPay(key, a);
            }
            mapping(bytes4 => uint256) storage grants = l.callPermissions[a.lineage][target];
            uint256 slot;
            assembly ("memory-safe") {
                mstore(0, and(selector, 0xffffffff00000000000000000000000000000000000000000000000000000000))
                mstore(0x20, grants.slot)
                slot := keccak256(0, 0x40)
            }
            uint256 word = _sload(slot);
            if (!PolicyWord.inScope(word)) return (PolicyWord.REASON_TOKEN_NOT_IN_SCOPE, 0);
            if (value != 0) {
                (uint32 r, uint256 spent) = PolicyWord.spend(word, value);
                reasons |= r;
                slots[n] = slot;
                words[n++] = spent;
            }
            if (a.options & OPT_SUB == 0) break;
        }
    }

    /// @dev Stores an agent's call that escalated, in a slot of its lineage.
    function _newCallRequest(
        address agent,
        uint32 lineage,
        address target,
        uint256 value,
        bytes calldata data,
        address spendToken,
        uint256 spendAmount,
        bytes32 ref,
        uint32 reasons
    ) private returns (uint256 id) {
        (uint256 requestId, uint256 slot,, uint40 expiresAt) = _allocateRequest(agent);
        bytes32 structHash = keccak256(
            abi.encode(
                CALL_REQUEST_TYPEHASH,
                requestId,
                agent,
                lineage,
                slot,
                target,
                value,
                keccak256(data),
                spendToken,
                spendAmount,
                ref,
                reasons,
                expiresAt
            )
        );
        _layout().requests[slot] = _pendingRecord(structHash);
        emit CallRequested(
            requestId, agent, target, lineage, uint64(slot), value, spendToken, spendAmount, ref, reasons, expiresAt, data
        );
        return requestId;
    }

    /// @dev An agent's payment of `amount`, charging its budget `charge` (the amount plus a relay
    /// fee). Inside every limit the budget is consumed, the funds move and 0 is returned; otherwise
    /// nothing changes and the escalation reasons are returned.
    function _pay(address agent, address token, address to, uint256 amount, uint256 charge, bytes32 ref)
        private
        returns (uint32 reasons)
    {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        uint256 newWord;
        uint256 slot;
        (reasons, newWord, slot) = _evaluatePay(agent, token, to, charge);
        // slither-disable-next-line incorrect-equality (a bitmask, not derived from time equality)
        if (reasons == 0) {
            _sstore(slot, newWord);
            _send(token, to, amount);
            emit PaymentExecuted(agent, token, to, amount, ref);
        }
    }

    /// @dev The escalation reasons of a payment of `charge` from `agent`'s budget in `token` to
    /// `to`, and the agent's word with it spent and that word's slot (its caller writes it when
    /// the payment runs; a sub-agent's ancestors' words and per-recipient budgets are written
    /// here then).
    function _evaluatePay(address agent, address token, address to, uint256 charge)
        private
        returns (uint32 reasons, uint256 newWord, uint256 slot)
    {
        Layout storage l = _layout();
        slot = _policySlot(agent, token);
        uint256 word = _sload(slot);
        if (word & (PolicyWord.FAST | PolicyWord.SUB | PolicyWord.RBUDGET) == PolicyWord.FAST) {
            // Vault, agent status, validity window and scope already hold (see FAST): one word read.
            (reasons, newWord) = PolicyWord.spend(word, charge);
            if (word & PolicyWord.ALLOWLIST != 0 && !l.allowlist[l.agents[agent].lineage][to]) {
                reasons |= PolicyWord.REASON_RECIPIENT_NOT_ALLOWED;
            }
        } else if (word & (PolicyWord.FAST | PolicyWord.SUB | PolicyWord.RBUDGET) == PolicyWord.FAST | PolicyWord.SUB) {
            // A sub-agent with FAST: its word as above, then every ancestor's word (the general
            // path's checks unless each of their words holds FAST alone: {_spendAncestors}).
            (reasons, newWord) = PolicyWord.spend(word, charge);
            if (word & PolicyWord.ALLOWLIST != 0 && !l.allowlist[l.agents[agent].lineage][to]) {
                reasons |= PolicyWord.REASON_RECIPIENT_NOT_ALLOWED;
            }
            if (reasons == 0) {
                uint256 more = _spendAncestors(agent, token, charge, MAX_DEPTH, true);
                if (more == ANCESTOR_CHECKS) (reasons, newWord) = _payChecked(agent, token, to, charge, word);
                else reasons = uint32(more);
            }
        } else {
            (reasons, newWord) = _payChecked(agent, token, to, charge, word);
        }
    }

    /// @dev The fast path of a sub-agent's ancestors (`levels` more at most): `charge` against
    /// the word of `key`'s parent, and of its parent while that one is a sub-agent too. Returns
    /// the escalation reasons of them all, or ANCESTOR_CHECKS, having written nothing, as soon as
    /// an ancestor's word needs more than itself (no FAST: the ancestor must be checked in full;
    /// an allowlist or a per-recipient budget): {_payChecked} then decides. A word is written only
    /// when every level, those above it (`clean`) and those below, accepts the charge.
    function _spendAncestors(address key, address token, uint256 charge, uint256 levels, bool clean)
        private
        returns (uint256 reasons)
    {
        address parent = _layout().parentOf[key];
        uint256 slot = _policySlot(parent, token);
        uint256 word = _sload(slot);
        if (word & (PolicyWord.FAST | PolicyWord.ALLOWLIST | PolicyWord.RBUDGET) != PolicyWord.FAST) {
            return ANCESTOR_CHECKS;
        }
        (uint32 r, uint256 spent) = PolicyWord.spend(word, charge);
        reasons = r;
        if (word & PolicyWord.SUB != 0 && levels > 1) {
            uint256 above = _spendAncestors(parent, token, charge, levels - 1, clean && r == 0);
            if (above == ANCESTOR_CHECKS) return ANCESTOR_CHECKS;
            reasons |= above;
        }
        if (clean && reasons == 0) _sstore(slot, spent);
    }

    /// @dev The agent whose EIP-712 signature over an intent's struct hash this is; spends its
    /// nonce. The signature is 65 bytes, r | s | v (else {InvalidSignature}, as OpenZeppelin's
    /// bytes form refuses it), read in place instead of copied to memory.
    function _recoverAgent(bytes32 structHash, bytes calldata signature, uint256 nonce) private returns (address agent) {
        if (signature.length != 65) revert InvalidSignature(address(0));
        // slither-disable-next-line unused-return (tryRecover's signer is 0 whatever its error)
        (agent,,) = ECDSA.tryRecover(
            _hashTypedDataV4(structHash), uint8(signature[64]), bytes32(signature[:32]), bytes32(signature[32:64])
        );
        if (agent == address(0)) revert InvalidSignature(address(0));
        _useNonce(agent, nonce);
    }

    /// @dev A permission context, `abi.encode(Intent, bytes signature)`, read strictly: anything
    /// else (short, other offsets, dirty address words) is {InvalidPermissionContext}. Returns
    /// the intent's token, recipient and amount, and the signature; the intent's other words
    /// are read in place by the caller (the context is at least 288 bytes long).
    function _decodeContext(bytes calldata context, uint256 index)
        private
        pure
        returns (address token, address to, uint256 amount, bytes calldata signature)
    {
        if (context.length < 288 || uint256(bytes32(context[224:256])) != 256) {
            revert InvalidPermissionContext(index);
        }
        uint256 length = uint256(bytes32(context[256:288]));
        if (length > context.length - 288) revert InvalidPermissionContext(index);
        uint256 tokenWord = uint256(bytes32(context[0:32]));
        uint256 toWord = uint256(bytes32(context[32:64]));
        if ((tokenWord | toWord) >> 160 != 0) revert InvalidPermissionContext(index);
        token = address(uint160(tokenWord));
        to = address(uint160(toWord));
        amount = uint256(bytes32(context[64:96]));
        signature = context[288:288 + length];
    }

    /// @dev The payment checks beyond one FAST word: the full checks of a word without FAST, and a
    /// sub-agent's ancestors and per-recipient budgets (their words are written here when the
    /// payment runs; the agent's own word is returned for the caller to write).
    function _payChecked(address agent, address token, address to, uint256 charge, uint256 word)
        private
        returns (uint32 reasons, uint256 newWord)
    {
        Layout storage l = _layout();
        if (word & PolicyWord.FAST != 0) {
            (reasons, newWord) = PolicyWord.spend(word, charge);
            if (word & PolicyWord.ALLOWLIST != 0 && !l.allowlist[l.agents[agent].lineage][to]) {
                reasons |= PolicyWord.REASON_RECIPIENT_NOT_ALLOWED;
            }
        } else {
            if (l.config.paused) revert VaultIsPaused();
            Agent memory a = l.agents[agent];
            _checkAgentCanPay(agent, a);
            (reasons, newWord) = PolicyWord.evaluate(word, charge);
            if (a.options & OPT_ALLOWLIST != 0 && !l.allowlist[a.lineage][to]) {
                reasons |= PolicyWord.REASON_RECIPIENT_NOT_ALLOWED;
            }
            newWord = PolicyWord.withFlags(newWord, _flags(a, false));
        }
        // slither-disable-next-line incorrect-equality (a bitmask, not derived from time equality)
        if (reasons != 0 || word & (PolicyWord.SUB | PolicyWord.RBUDGET) == 0) return (reasons, newWord);
        // slither-disable-next-line uninitialized-local (memory arrays start zeroed; filled by _spendMore)
        uint256[8] memory slots;
        // slither-disable-next-line uninitialized-local
        uint256[8] memory words;
        uint256 n;
        (reasons, n) = _spendMore(agent, token, to, charge, word, slots, words);
        // slither-disable-next-line incorrect-equality (a bitmask, not derived from time equality)
        if (reasons == 0) {
            for (uint256 i = 0; i < n; ++i) {
                _sstore(slots[i], words[i]);
            }
        }
    }

    /// @dev {_checkSignatures} for a signed payment (no stored request: a v == 1 entry is invalid),
    /// with the pause and the threshold read from the first signer's owner word, which mirrors
    /// the config word (OW_THRESHOLD), instead of one more cold read of the config word.
    function _checkPaymentSignatures(bytes32 digest, bytes calldata signatures)
        private
        view
        returns (address[] memory signers)
    {
        if (signatures.length < 65) revert NotEnoughSignatures(0, _layout().config.threshold);
        uint256 count = 1;
        uint256 staticEnd = 65;
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            (address signer, uint8 v, bytes32 s) = _signerAt(digest, signatures, i);
            if (signer <= previous) revert SignersNotSorted(previous, signer);
            uint256 ownerWord = _layout().owners[signer];
            if (signer == SENTINEL || ownerWord == 0) revert NotAnOwner(signer);
            if (i == 0) {
                if ((ownerWord >> OW_PAUSED) & 0xff != 0) revert VaultIsPaused();
                count = (ownerWord >> OW_THRESHOLD) & 0xff;
                staticEnd = count * 65;
                if (signatures.length < staticEnd) revert NotEnoughSignatures(signatures.length / 65, count);
                signers = new address[](count);
            }
            if (v == 1) revert InvalidSignature(signer);
            if (v == 0) _checkERC1271Entry(signer, digest, signatures, s, staticEnd);
            previous = signer;
            signers[i] = signer;
        }
    }

    /// @dev Every selector not in the core runs in the admin extension (OpenZeppelin's Proxy).
    function _implementation() internal view override returns (address) {
        return ADMIN;
    }
}
