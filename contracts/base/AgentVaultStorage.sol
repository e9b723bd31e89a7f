// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {TransientSlot} from "@openzeppelin/contracts/utils/TransientSlot.sol";
import {IAgentVaultBase} from "../interfaces/IAgentVaultBase.sol";
import {PolicyWord} from "../libraries/PolicyWord.sol";

/// @title AgentVaultStorage
/// @notice The one storage layout of a vault and the internals its core, admin and lens share.
/// All three run in the vault's (the clone's) storage: the core by the clone's delegatecall, the
/// admin and lens by the core's. None of them declares a state variable of its own: everything
/// lives in the ERC-7201 namespace `agentwallet.vault` ({Layout}); OpenZeppelin's EIP712 keeps two
/// unused fallback strings at slots 0-1 in every one of them alike (a test compares solc's layouts).
/// @dev Safe's `libraries/SafeStorage.sol` and OpenZeppelin's namespaced `Initializable` are the models.
abstract contract AgentVaultStorage is IAgentVaultBase, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using TransientSlot for *;

    // ------------------------------------------------------------------------------------------
    // Constants
    // ------------------------------------------------------------------------------------------

    uint256 internal constant MAX_OWNERS = 20;
    uint256 internal constant MIN_REQUEST_EXPIRY = 1 hours;
    uint256 internal constant MAX_REQUEST_EXPIRY = 365 days;
    uint256 internal constant MAX_OPEN_REQUESTS_CAP = 1000;
    /// @dev Agents a vault lists at once (active or paused) and tokens one agent can have limits
    /// for: they bound what {pause} rewrites. Distinct tokens a vault can ever scope: 255 (+ ETH).
    uint256 internal constant MAX_AGENTS = 64;
    uint256 internal constant MAX_TOKENS_PER_AGENT = 8;
    uint256 internal constant MAX_TOKENS = 255;
    /// @dev Sub-agents: at most 8 directly under an agent, at most 3 levels below an owners' agent.
    uint256 internal constant MAX_CHILDREN = 8;
    uint256 internal constant MAX_DEPTH = 3;
    /// @dev Agent options: its allowlist applies; it is a sub-agent (its words carry SUB).
    uint8 internal constant OPT_ALLOWLIST = 1;
    uint8 internal constant OPT_SUB = 2;
    /// @dev Gas forwarded to an ERC-1271 owner's `isValidSignature` (a Safe checking its own
    /// owners' signatures needs far less); only its first 32 bytes of return data are read.
    uint256 internal constant ERC1271_GAS = 250_000;

    bytes32 internal constant PAYMENT_REQUEST_TYPEHASH = keccak256(
        "PaymentRequest(uint256 id,address agent,uint32 lineage,uint64 slot,address token,address to,uint256 amount,bytes32 ref,uint32 reasons,uint40 expiresAt)"
    );
    bytes32 internal constant CALL_REQUEST_TYPEHASH = keccak256(
        "CallRequest(uint256 id,address agent,uint32 lineage,uint64 slot,address target,uint256 value,bytes data,address spendToken,uint256 spendAmount,bytes32 ref,uint32 reasons,uint40 expiresAt)"
    );
    bytes32 internal constant PROPOSAL_TYPEHASH =
        keccak256("GovernanceProposal(uint256 id,address proposer,bytes data,bytes32 ref,uint40 expiresAt)");
    bytes32 internal constant SIGNED_PAYMENT_TYPEHASH = keccak256(
        "SignedPayment(address agent,address token,address to,uint256 amount,bytes32 ref,uint256 nonce,uint256 deadline)"
    );
    bytes32 internal constant INTENT_TYPEHASH = keccak256(
        "Intent(address token,address to,uint256 amount,bytes32 ref,uint256 nonce,uint256 deadline,uint256 maxFee)"
    );
    bytes32 internal constant GOVERNANCE_TYPEHASH =
        keccak256("Governance(bytes[] calls,uint256 nonce,uint256 deadline)");
    bytes32 internal constant ROTATE_TYPEHASH =
        keccak256("RotateKey(address oldKey,address newKey,uint256 nonce,uint256 deadline)");

    /// @dev Nonce spaces of the owners' signed payments and signed governance batches: addresses
    /// no key can have (a key would need a keccak preimage).
    address internal constant PAYMENT_SPACE = address(uint160(uint256(keccak256("agentwallet.nonces.payment"))));
    address internal constant GOVERNANCE_SPACE =
        address(uint160(uint256(keccak256("agentwallet.nonces.governance"))));

    address internal constant SENTINEL = address(1);
    bytes32 internal constant EMPTY_HASH = keccak256("");
    /// @dev A request record (at its slot) is, while pending, the request's EIP-712 struct hash
    /// with its low 40 bits replaced by the creation block; once closed, `status | next free slot
    /// << 8 | request id << 40` (bits 104 and up zero; a hash has them all zero with p = 2^-152).
    uint256 internal constant BLOCK_MASK = (1 << 40) - 1;
    uint256 internal constant PENDING_SHIFT = 104;
    /// @dev Transient slot: while governance calls run, the id of the request executing them
    /// (type(uint256).max for a signed batch); zero otherwise. {onlyVault} accepts only then.
    bytes32 internal constant EXECUTING_SLOT = keccak256("agentwallet.AgentVault.executingRequest");
    uint256 internal constant SIGNED_BATCH = type(uint256).max;

    /// @dev keccak256(abi.encode(uint256(keccak256("agentwallet.vault")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 internal constant LAYOUT_SLOT = 0xe79e714abe350f418da5842700fa6185b1c082738decf0346d4aa06561fc6200;

    /// @dev Bit offsets of the packed {Agent} and {Config} words as solc lays the structs out
    /// (first member lowest), for the hot paths that read and write a word whole. A test checks
    /// them against the views.
    uint256 internal constant AW_STATUS = 0;
    uint256 internal constant AW_ALLOWLIST = 8;
    uint256 internal constant AW_VALID_AFTER = 16;
    uint256 internal constant AW_VALID_UNTIL = 56;
    uint256 internal constant AW_LINEAGE = 112;
    uint256 internal constant AW_POSITION = 144;
    uint256 internal constant AW_OPEN = 96;
    uint256 internal constant AW_FREE = 224;
    uint256 internal constant CW_THRESHOLD = 0;
    uint256 internal constant CW_PAUSED = 16;
    uint256 internal constant CW_AGENT_COUNT = 24;
    uint256 internal constant CW_LINEAGE_COUNT = 88;
    uint256 internal constant CW_EXPIRY = 40;
    uint256 internal constant CW_MAX_OPEN = 72;
    uint256 internal constant CW_REQUEST_COUNT = 184;
    /// @dev An owner's word (`owners[owner]`): the next owner in the list (bits 0-159), its epoch
    /// (160-223) and a mirror of the config word's threshold (224-231) and pause flag (232-239),
    /// which {_syncOwners} rewrites whenever either changes or the owner list does, so that
    /// `payWithSignatures` reads the owners' words it must read anyway and not the config word.
    uint256 internal constant OW_EPOCH = 160;
    uint256 internal constant OW_THRESHOLD = 224;
    uint256 internal constant OW_PAUSED = 232;
    uint256 internal constant MASK_16 = (1 << 16) - 1;
    uint256 internal constant MASK_32 = (1 << 32) - 1;
    uint256 internal constant MASK_40 = (1 << 40) - 1;
    uint256 internal constant MASK_64 = (1 << 64) - 1;

    // ------------------------------------------------------------------------------------------
    // Layout
    // ------------------------------------------------------------------------------------------

    /// @dev Vault-wide settings, one word.
    struct Config {
        uint8 threshold;
        uint8 ownerCount;
        bool paused;
        uint8 agentCount; // listed agents (active or paused)
        uint8 tokenCount; // tokens in the registry (ETH is index 0 and not counted)
        uint32 requestExpiry;
        uint16 maxOpenRequests;
        uint32 lineageCount;
        uint64 ownerEpoch;
        uint64 requestCount;
    }

    /// @dev An agent key, one word.
    struct Agent {
        AgentStatus status;
        uint8 options; // OPT_ALLOWLIST | OPT_SUB
        uint40 validAfter;
        uint40 validUntil;
        uint16 openRequests;
        uint32 lineage;
        uint8 position; // 1-based place in the agent list; 0 = not listed
        uint8 tokenCount;
        uint64 tokens; // registry indices of the tokens it has limits for, 8 bits each
        uint32 freeSlot; // head of the lineage's list of reusable request slots; 0 = none
    }

    /// @custom:storage-location erc7201:agentwallet.vault
    struct Layout {
        Config config;
        /// owners as a linked list from SENTINEL: value = next owner | epoch << 160
        mapping(address => uint256) owners;
        mapping(address => Agent) agents;
        /// agent key => token => packed policy word ({PolicyWord})
        mapping(address => mapping(address => uint256)) policies;
        /// lineage => recipient => allowed
        mapping(uint256 => mapping(address => bool)) allowlist;
        /// request slot => record (see BLOCK_MASK); a slot is the id of the first request stored there
        mapping(uint256 => uint256) requests;
        /// request id => owner => owner epoch << 1 | 1 if the vote is a rejection (0 = no vote)
        mapping(uint256 => mapping(address => uint256)) votes;
        /// place in the agent list => agent key
        mapping(uint256 => address) agentAt;
        /// token registry: index => token and token => index (ETH, address(0), is index 0)
        mapping(uint256 => address) tokenAt;
        mapping(address => uint256) tokenIndex;
        /// nonce space => word position => used-nonce bitmap (Permit2's `nonceBitmap`)
        mapping(address => mapping(uint256 => uint256)) nonces;
        /// lineage => its current key, written when a key is rotated
        mapping(uint256 => address) lineageKey;
        /// sub-agent key => the key of the agent that delegated to it (0: added by the owners)
        mapping(address => address) parentOf;
        /// lineage => the keys of the sub-agents directly under it
        mapping(uint256 => address[]) children;
        /// lineage => token => recipient (0: every recipient without its own) => budget word
        mapping(uint256 => mapping(address => mapping(address => uint256))) recipientBudgets;
        /// lineage => target => selector => call permission (a PolicyWord over the ETH value)
        mapping(uint256 => mapping(address => mapping(bytes4 => uint256))) callPermissions;
    }

    function _layout() internal pure returns (Layout storage l) {
        assembly ("memory-safe") {
            l.slot := LAYOUT_SLOT
        }
    }

    /// @dev The deployed contract's own address: a call that is not a delegatecall runs with it.
    address internal immutable SELF;

    constructor() EIP712("AgentVault", "1") {
        SELF = address(this);
    }

    // ------------------------------------------------------------------------------------------
    // Modifiers
    // ------------------------------------------------------------------------------------------

    modifier onlyOwner() {
        if (!_isOwner(msg.sender)) revert NotOwner(msg.sender);
        _;
    }

    /// @dev Safe's `SafeToL2Setup.onlyDelegateCall`: an extension's own storage is never a vault.
    modifier onlyDelegateCall() {
        if (address(this) == SELF) revert NotDelegateCall();
        _;
    }

    /// @dev Risk-adding calls run only inside an authorised governance execution (a request that
    /// reached the threshold, or a signed batch), which sets EXECUTING_SLOT around them; nothing
    /// they do calls out of the vault, so no one else can run code while it is set.
    modifier onlyVault() {
        if (EXECUTING_SLOT.asUint256().tload() == 0) revert OnlyVault(msg.sender);
        _;
    }

    // ------------------------------------------------------------------------------------------
    // Owners and signatures
    // ------------------------------------------------------------------------------------------

    function _isOwner(address account) internal view returns (bool) {
        return account != SENTINEL && _layout().owners[account] != 0;
    }

    /// @dev Checks the first `count` packed signatures over `digest` (see
    /// {IAgentVaultCore-payWithSignatures}) and returns their signers: strictly ascending, each a
    /// current owner. An ERC-1271 owner is called only after it is known to be an owner, with at
    /// most ERC1271_GAS gas, and only 32 bytes of its answer are read. With a stored request
    /// (`requestId` != 0) an entry with v == 1 (Safe's "approved hash") stands for the owner at
    /// `r` whose on-chain approval of that request is current (the test {_approvers} uses);
    /// without one (`requestId` == 0) such an entry is an invalid signature.
    function _checkSignatures(bytes32 digest, bytes calldata signatures, uint256 count, uint256 requestId)
        internal
        view
        returns (address[] memory signers)
    {
        uint256 staticEnd = count * 65;
        if (signatures.length < staticEnd) revert NotEnoughSignatures(signatures.length / 65, count);
        signers = new address[](count);
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            (address signer, uint8 v, bytes32 s) = _signerAt(digest, signatures, i);
            if (signer <= previous) revert SignersNotSorted(previous, signer);
            if (!_isOwner(signer)) revert NotAnOwner(signer);
            if (v == 1) {
                // no stored request, or not the test of {_approvers} (approval of an older owner epoch)
                Layout storage l = _layout();
                if (requestId == 0 || l.votes[requestId][signer] != _approvalOf(l.owners[signer])) {
                    revert InvalidSignature(signer);
                }
            } else if (v == 0) {
                _checkERC1271Entry(signer, digest, signatures, s, staticEnd);
            }
            previous = signer;
            signers[i] = signer;
        }
    }

    /// @dev Entry `i` of packed signatures: its signer (recovered, or named by `r` when v < 2),
    /// `v` and `s`. The caller checked that the entry lies within `signatures`.
    function _signerAt(bytes32 digest, bytes calldata signatures, uint256 i)
        internal
        pure
        returns (address signer, uint8 v, bytes32 s)
    {
        bytes32 r;
        assembly ("memory-safe") {
            let p := add(signatures.offset, mul(i, 65))
            r := calldataload(p)
            s := calldataload(add(p, 32))
            v := byte(0, calldataload(add(p, 64)))
        }
        if (v < 2) {
            // v == 0, ERC-1271 owner: r = its address, s = offset of its length-prefixed signature.
            // v == 1, owner who approved the stored request on-chain: r = its address.
            if (uint256(r) >> 160 != 0) revert InvalidSignature(address(0));
            signer = address(uint160(uint256(r)));
        } else {
            ECDSA.RecoverError error;
            // slither-disable-next-line unused-return (the third value only details `error`)
            (signer, error,) = ECDSA.tryRecover(digest, v, r, s);
            if (error != ECDSA.RecoverError.NoError) revert InvalidSignature(address(0));
        }
    }

    /// @dev Checks an ERC-1271 owner's entry (v == 0): `s` is the offset, past the static part
    /// (`staticEnd`), of its length-prefixed signature.
    function _checkERC1271Entry(
        address signer,
        bytes32 digest,
        bytes calldata signatures,
        bytes32 s,
        uint256 staticEnd
    ) internal view {
        uint256 offset = uint256(s);
        if (offset < staticEnd || offset > signatures.length - 32) revert InvalidSignature(signer);
        uint256 length = uint256(bytes32(signatures[offset:offset + 32]));
        if (length > signatures.length - offset - 32) revert InvalidSignature(signer);
        if (!_isValidERC1271(signer, digest, signatures[offset + 32:offset + 32 + length])) {
            revert InvalidSignature(signer);
        }
    }

    /// @dev The vote an owner's approval is stored as: its epoch (from its owner word) << 1.
    function _approvalOf(uint256 ownerWord) internal pure returns (uint256) {
        return ((ownerWord >> OW_EPOCH) & MASK_64) << 1;
    }

    /// @dev Rewrites every owner's mirror of the config word's threshold and pause flag (see
    /// OW_THRESHOLD): called after every change of either and of the owner list.
    function _syncOwners() internal {
        Layout storage l = _layout();
        uint256 cw = _sload(_configSlot());
        uint256 mirror = (((cw >> CW_THRESHOLD) & 0xff) << OW_THRESHOLD) | (((cw >> CW_PAUSED) & 0xff) << OW_PAUSED);
        address current = address(uint160(l.owners[SENTINEL]));
        while (current != SENTINEL) {
            uint256 word = l.owners[current];
            uint256 synced = (word & ~(MASK_16 << OW_THRESHOLD)) | mirror;
            if (synced != word) l.owners[current] = synced;
            current = address(uint160(word));
        }
    }

    /// @dev OpenZeppelin's `SignatureChecker.isValidERC1271SignatureNow` with two bounds: the gas
    /// forwarded and the return data copied (a hostile owner contract cannot make the submitter
    /// pay for an unbounded loop or a return-data bomb).
    function _isValidERC1271(address signer, bytes32 digest, bytes calldata signature)
        internal
        view
        returns (bool valid)
    {
        bytes memory data = abi.encodeCall(IERC1271.isValidSignature, (digest, signature));
        bool success;
        bytes32 result;
        assembly ("memory-safe") {
            success := staticcall(ERC1271_GAS, signer, add(data, 0x20), mload(data), 0, 0x20)
            result := mload(0)
            if lt(returndatasize(), 0x20) { success := 0 }
        }
        valid = success && result == bytes32(IERC1271.isValidSignature.selector);
    }

    /// @dev Spends `nonce` of `space` (Permit2's `_useUnorderedNonce`).
    function _useNonce(address space, uint256 nonce) internal {
        uint256 bit = 1 << (nonce & 0xff);
        uint256 flipped = _layout().nonces[space][nonce >> 8] ^= bit;
        if (flipped & bit == 0) revert NonceAlreadyUsed(space, nonce);
    }

    // ------------------------------------------------------------------------------------------
    // Agents
    // ------------------------------------------------------------------------------------------

    /// @dev The FAST/ALLOWLIST bits an agent's words may carry now (see {PolicyWord}).
    function _flags(Agent memory a, bool vaultPaused) internal view returns (uint256) {
        if (vaultPaused || a.status != AgentStatus.Active || a.validUntil != 0 || block.timestamp < a.validAfter) {
            return 0;
        }
        return a.options & OPT_ALLOWLIST != 0 ? PolicyWord.FLAGS : PolicyWord.FAST;
    }

    /// @dev A payment of `charge` to `to` against a lineage's per-recipient budget in `token`: the
    /// recipient's own budget, else the default (recipient 0) with the recipient's own budget
    /// state. Returns the reason (REASON_OVER_RECIPIENT_BUDGET or 0) and the slot and word to
    /// write (slot 0: no budget applies).
    function _recipientBudget(uint256 lineage, address token, address to, uint256 charge)
        internal
        view
        returns (uint32 reason, uint256 slot, uint256 word)
    {
        mapping(address => uint256) storage budgets = _layout().recipientBudgets[lineage][token];
        assembly ("memory-safe") {
            mstore(0, to)
            mstore(0x20, budgets.slot)
            slot := keccak256(0, 0x40)
        }
        uint256 own = _sload(slot);
        uint256 limits = own;
        if (!PolicyWord.inScope(own)) {
            uint256 fallbackBudget = budgets[address(0)];
            if (!PolicyWord.inScope(fallbackBudget)) return (0, 0, 0);
            limits = (fallbackBudget & ~PolicyWord.TAT_MASK) | (own & PolicyWord.TAT_MASK);
        }
        (uint32 r, uint256 spent) = PolicyWord.evaluate(limits, charge);
        if (r != 0) return (PolicyWord.REASON_OVER_RECIPIENT_BUDGET, 0, 0);
        // a recipient under the default keeps only its budget state (the limits stay the default's)
        word = PolicyWord.inScope(own) ? spent : spent & PolicyWord.TAT_MASK;
    }

    /// @dev What a payment needs beyond the agent's own word: its per-recipient budget, and for a
    /// sub-agent each ancestor's word in the token (all must accept `charge`; an ancestor that is
    /// paused, revoked or outside its window stops the payment). Fills `slots`/`words` with the
    /// words to write if the payment runs; returns the escalation reasons and how many words.
    function _spendMore(
        address agent,
        address token,
        address to,
        uint256 charge,
        uint256 word,
        uint256[8] memory slots,
        uint256[8] memory words
    ) internal view returns (uint32 reasons, uint256 n) {
        Layout storage l = _layout();
        if (word & PolicyWord.RBUDGET != 0) {
            (reasons, slots[0], words[0]) = _recipientBudget(l.agents[agent].lineage, token, to, charge);
            if (slots[0] != 0) n = 1;
        }
        address key = agent;
        for (uint256 depth = 0; depth < MAX_DEPTH && word & PolicyWord.SUB != 0; ++depth) {
            key = l.parentOf[key];
            uint256 slot = _policySlot(key, token);
            word = _sload(slot);
            uint32 r;
            uint256 spent;
            // slither-disable-next-line uninitialized-local (read only with RBUDGET, which sets it)
            uint256 lineage;
            if (word & PolicyWord.FAST != 0) {
                (r, spent) = PolicyWord.spend(word, charge);
                // the agent word only when the allowlist or a recipient budget needs the lineage
                if (word & (PolicyWord.ALLOWLIST | PolicyWord.RBUDGET) != 0) {
                    lineage = (_sload(_agentSlot(key)) >> AW_LINEAGE) & MASK_32;
                    if (word & PolicyWord.ALLOWLIST != 0 && !l.allowlist[lineage][to]) {
                        r |= PolicyWord.REASON_RECIPIENT_NOT_ALLOWED;
                    }
                }
            } else {
                // without FAST the ancestor takes the full checks (the vault's pause is checked already)
                Agent memory a = l.agents[key];
                _checkAgentCanPay(key, a);
                (r, spent) = PolicyWord.evaluate(word, charge);
                if (a.options & OPT_ALLOWLIST != 0 && !l.allowlist[a.lineage][to]) {
                    r |= PolicyWord.REASON_RECIPIENT_NOT_ALLOWED;
                }
                lineage = a.lineage;
            }
            slots[n] = slot;
            words[n++] = spent;
            if (word & PolicyWord.RBUDGET != 0) {
                (uint32 rb, uint256 bslot, uint256 bword) = _recipientBudget(lineage, token, to, charge);
                r |= rb;
                if (bslot != 0) {
                    slots[n] = bslot;
                    words[n++] = bword;
                }
            }
            reasons |= r;
        }
    }

    /// @dev Reverts unless msg.sender is an owner or a live agent above `agent`.
    function _onlyOwnerOrAncestor(address agent) internal view {
        if (_isOwner(msg.sender)) return;
        Layout storage l = _layout();
        address key = agent;
        for (uint256 depth = 0; depth < MAX_DEPTH; ++depth) {
            key = l.parentOf[key];
            if (key == address(0)) break;
            if (key == msg.sender) {
                Agent storage a = l.agents[key];
                if (_alive(a, a.lineage)) return;
                break;
            }
        }
        revert NotOwner(msg.sender);
    }

    /// @dev The agent on whose behalf a sub-agent is configured: the caller itself, active, or
    /// any live agent when governance acts for it.
    function _delegator(address parent) internal view returns (Agent memory p) {
        Agent storage stored = _layout().agents[parent];
        p = stored;
        if (parent == address(0)) revert UnknownAgent(parent);
        if (EXECUTING_SLOT.asUint256().tload() != 0) {
            if (!_alive(stored, p.lineage)) revert AgentNotActive(parent, p.status);
        } else if (msg.sender != parent || p.status != AgentStatus.Active) {
            revert NotOwner(msg.sender);
        }
    }

    /// @dev Who made a change: the vault during governance, else the caller.
    function _by() internal view returns (address) {
        return EXECUTING_SLOT.asUint256().tload() != 0 ? address(this) : msg.sender;
    }

    /// @dev {_flags} from the raw agent and config words.
    function _flagsOf(uint256 aw, uint256 cw) internal view returns (uint256) {
        if (
            (cw >> CW_PAUSED) & 0xff != 0 || aw & 0xff != uint256(AgentStatus.Active)
                || (aw >> AW_VALID_UNTIL) & MASK_40 != 0 || block.timestamp < (aw >> AW_VALID_AFTER) & MASK_40
        ) return 0;
        return (aw >> AW_ALLOWLIST) & OPT_ALLOWLIST != 0 ? PolicyWord.FLAGS : PolicyWord.FAST;
    }

    function _checkAgentCanPay(address key, Agent memory a) internal view {
        if (a.status != AgentStatus.Active) revert AgentNotActive(key, a.status);
        if (block.timestamp < a.validAfter) revert AgentNotYetValid(key, a.validAfter);
        if (a.validUntil != 0 && block.timestamp > a.validUntil) revert AgentExpired(key, a.validUntil);
    }

    /// @dev The token at place `i` of an agent's token set.
    function _tokenOf(Agent memory a, uint256 i) internal view returns (address) {
        uint256 index = (a.tokens >> (8 * i)) & 0xff;
        return index == 0 ? address(0) : _layout().tokenAt[index];
    }

    // ------------------------------------------------------------------------------------------
    // Requests
    // ------------------------------------------------------------------------------------------

    /// @dev The EIP-712 struct hash of a payment request, hashed as it lies in calldata (a
    /// static struct: its ABI words are its EIP-712 words; dirty words give another hash, which
    /// then matches nothing stored).
    function _hashPayment(PaymentRequest calldata r) internal pure returns (bytes32 structHash) {
        bytes32 typeHash = PAYMENT_REQUEST_TYPEHASH;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typeHash)
            calldatacopy(add(p, 0x20), r, 0x140)
            structHash := keccak256(p, 0x160)
        }
    }

    /// @dev The EIP-712 struct hash of a governance proposal (`dataHash` stands for `bytes data`).
    function _hashProposal(GovernanceProposal calldata p) internal pure returns (bytes32 structHash) {
        bytes32 typeHash = PROPOSAL_TYPEHASH;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, typeHash)
            calldatacopy(add(m, 0x20), p, 0xa0)
            structHash := keccak256(m, 0xc0)
        }
    }

    function _pendingRecord(bytes32 structHash) internal view returns (uint256) {
        return (uint256(structHash) & ~BLOCK_MASK) | (block.number & BLOCK_MASK);
    }

    /// @dev Reverts unless `record` (of request `id`) holds the request with `structHash`, pending.
    function _checkRecord(uint256 id, uint256 record, bytes32 structHash) internal pure {
        if (record >> PENDING_SHIFT == 0) {
            if (record == 0) revert UnknownRequest(id);
            if ((record >> 40) & MASK_64 == id) revert RequestNotPending(id, RequestStatus(record & 0xff));
            revert RequestNotPending(id, RequestStatus.Closed);
        }
        if ((record ^ uint256(structHash)) >> 40 != 0) revert RequestMismatch(id);
    }

    /// @dev The storage slot of an agent key's word.
    function _agentSlot(address key) internal view returns (uint256 slot) {
        Agent storage a = _layout().agents[key];
        assembly ("memory-safe") {
            slot := a.slot
        }
    }

    /// @dev The storage slot of `policies[key][token]`, an agent key's policy word in a token
    /// (for the paths that read and write the word by slot).
    function _policySlot(address key, address token) internal view returns (uint256 slot) {
        mapping(address => mapping(address => uint256)) storage policies = _layout().policies;
        assembly ("memory-safe") {
            mstore(0, key)
            mstore(0x20, policies.slot)
            mstore(0x20, keccak256(0, 0x40))
            mstore(0, token)
            slot := keccak256(0, 0x40)
        }
    }

    /// @dev The config word's slot: the first member of the layout.
    function _configSlot() internal pure returns (uint256) {
        return uint256(LAYOUT_SLOT);
    }

    function _sload(uint256 slot) internal view returns (uint256 word) {
        assembly ("memory-safe") {
            word := sload(slot)
        }
    }

    function _sstore(uint256 slot, uint256 word) internal {
        assembly ("memory-safe") {
            sstore(slot, word)
        }
    }

    /// @dev Escalates an agent's payment into a request, within its open-request allowance, in a
    /// reused slot of its lineage when one is free.
    function _newPaymentRequest(address agent, address token, address to, uint256 amount, bytes32 ref, uint32 reasons)
        internal
        returns (uint256 requestId)
    {
        (uint256 id, uint256 slot, uint32 lineage, uint40 expiresAt) = _allocateRequest(agent);
        bytes32 structHash = keccak256(
            abi.encode(PAYMENT_REQUEST_TYPEHASH, id, agent, lineage, slot, token, to, amount, ref, reasons, expiresAt)
        );
        _layout().requests[slot] = _pendingRecord(structHash);
        emit PaymentRequested(id, agent, token, lineage, uint64(slot), to, amount, ref, reasons, expiresAt);
        return id;
    }

    /// @dev A new request id and a slot for an agent's payment request (popped from its lineage's
    /// free list, else the id); counts the request open. Reads and writes the agent and config
    /// words whole.
    function _allocateRequest(address agent)
        internal
        returns (uint256 requestId, uint256 slot, uint32 lineage, uint40 expiresAt)
    {
        uint256 agentSlot = _agentSlot(agent);
        uint256 aw = _sload(agentSlot);
        uint256 cw = _sload(_configSlot());
        uint256 open = (aw >> AW_OPEN) & MASK_16;
        uint256 maxOpen = (cw >> CW_MAX_OPEN) & MASK_16;
        if (open >= maxOpen) revert TooManyOpenRequests(agent, open, maxOpen);
        requestId = ((cw >> CW_REQUEST_COUNT) & MASK_64) + 1;
        if (requestId > MASK_64) revert CounterOverflow();
        _sstore(_configSlot(), (cw & ~(MASK_64 << CW_REQUEST_COUNT)) | (requestId << CW_REQUEST_COUNT));
        slot = aw >> AW_FREE;
        if (slot != 0) {
            aw = (aw & ~(MASK_32 << AW_FREE)) | (((_layout().requests[slot] >> 8) & MASK_32) << AW_FREE);
        } else {
            slot = requestId;
        }
        _sstore(agentSlot, aw + (1 << AW_OPEN)); // open < maxOpen <= 1000: no carry
        lineage = uint32(aw >> AW_LINEAGE);
        expiresAt = uint40(block.timestamp + ((cw >> CW_EXPIRY) & MASK_32));
    }

    /// @dev The word of a request's agent lineage at its current key (following rotations), and
    /// whether that lineage still lives (its key active or paused).
    function _requestAgentWord(address key, uint256 lineage)
        internal
        view
        returns (uint256 agentSlot, uint256 aw, bool alive)
    {
        agentSlot = _agentSlot(key);
        aw = _sload(agentSlot);
        uint256 status = aw & 0xff;
        if ((aw >> AW_LINEAGE) & MASK_32 != lineage || status == uint256(AgentStatus.Rotated)) {
            agentSlot = _agentSlot(_layout().lineageKey[lineage]);
            aw = _sload(agentSlot);
            status = aw & 0xff;
        }
        alive = (aw >> AW_LINEAGE) & MASK_32 == lineage
            && (status == uint256(AgentStatus.Active) || status == uint256(AgentStatus.Paused));
    }

    /// @dev Checks that `r` is a pending, unexpired payment request of a live agent; returns its
    /// struct hash and its lineage's current agent word. After the hash matched, `r`'s words are
    /// the clean words once stored, so they are read without further checks.
    function _openPayment(PaymentRequest calldata r)
        internal
        view
        returns (bytes32 structHash, uint256 agentSlot, uint256 aw)
    {
        structHash = _hashPayment(r);
        uint256 id = r.id;
        _checkRecord(id, _layout().requests[_word(r, 3)], structHash);
        if (block.timestamp > _word(r, 9)) revert RequestHasExpired(id, uint40(_word(r, 9)));
        bool alive;
        (agentSlot, aw, alive) = _requestAgentWord(address(uint160(_word(r, 1))), _word(r, 2));
        if (!alive) revert RequestNotPending(id, RequestStatus.AgentRevoked);
    }

    /// @dev Word `i` of a calldata payment request (0 id, 1 agent, 2 lineage, 3 slot, 4 token,
    /// 5 to, 6 amount, 7 ref, 8 reasons, 9 expiresAt).
    function _word(PaymentRequest calldata r, uint256 i) internal pure returns (uint256 w) {
        assembly ("memory-safe") {
            w := calldataload(add(r, shl(5, i)))
        }
    }

    /// @dev Closes a payment request (checked by the caller) with `status` (see {_closeSlot}).
    function _closePayment(PaymentRequest calldata r, uint256 agentSlot, uint256 aw, bool alive, RequestStatus status)
        internal
    {
        _closeSlot(_word(r, 0), _word(r, 3), agentSlot, aw, alive, status);
    }

    /// @dev Closes request `id` stored at `slot` with `status`; while its lineage lives (`alive`,
    /// its word `aw` at `agentSlot`), the slot goes on the lineage's free list and the
    /// open-request count drops.
    function _closeSlot(uint256 id, uint256 slot, uint256 agentSlot, uint256 aw, bool alive, RequestStatus status)
        internal
    {
        uint256 entry = uint256(status) | (id << 40);
        if (alive) {
            if (slot <= MASK_32) {
                entry |= ((aw >> AW_FREE) & MASK_32) << 8;
                aw = (aw & ~(MASK_32 << AW_FREE)) | (slot << AW_FREE);
            }
            _sstore(agentSlot, aw - (1 << AW_OPEN));
        }
        _layout().requests[slot] = entry;
    }

    /// @dev Executes an approved payment request (checked by the caller): closes it and pays.
    function _executePayment(PaymentRequest calldata r, uint256 agentSlot, uint256 aw, address[] memory signers)
        internal
    {
        if ((_sload(_configSlot()) >> CW_PAUSED) & 0xff != 0) revert VaultIsPaused();
        _closePayment(r, agentSlot, aw, true, RequestStatus.Executed);
        address agent = address(uint160(_word(r, 1)));
        address token = address(uint160(_word(r, 4)));
        address to = address(uint160(_word(r, 5)));
        uint256 amount = _word(r, 6);
        bytes32 ref = bytes32(_word(r, 7));
        // slither-disable-next-line arbitrary-send-eth (a payment the threshold of owners approved)
        _transferOut(token, to, amount, true);
        emit PaymentExecuted(agent, token, to, amount, ref);
        emit RequestExecuted(_word(r, 0), msg.sender, signers);
    }

    /// @dev Whether an agent word still belongs to `lineage` and may act (active or paused).
    function _alive(Agent storage a, uint32 lineage) internal view returns (bool) {
        AgentStatus s = a.status;
        return a.lineage == lineage && (s == AgentStatus.Active || s == AgentStatus.Paused);
    }

    /// @dev Records msg.sender's approval of `requestId` (replacing a rejection); returns the
    /// current owners who approved and how many they are.
    function _approve(uint256 requestId) internal returns (address[] memory approvers, uint256 approvals) {
        Layout storage l = _layout();
        uint256 vote = _approvalOf(l.owners[msg.sender]);
        if (l.votes[requestId][msg.sender] == vote) revert AlreadyApproved(requestId, msg.sender);
        l.votes[requestId][msg.sender] = vote;
        approvers = _approvers(requestId);
        approvals = approvers.length;
        emit RequestApproved(requestId, msg.sender, approvals);
    }

    /// @dev The current owners whose on-chain approval of `requestId` counts, if they meet the threshold.
    function _approvedBy(uint256 requestId) internal view returns (address[] memory approvers) {
        approvers = _approvers(requestId);
        uint256 t = _layout().config.threshold;
        if (approvers.length < t) revert NotEnoughApprovals(requestId, approvers.length, t);
    }

    function _approvers(uint256 requestId) internal view returns (address[] memory approvers) {
        Layout storage l = _layout();
        mapping(address => uint256) storage votes = l.votes[requestId];
        approvers = new address[](l.config.ownerCount);
        uint256 n = 0;
        address current = address(uint160(l.owners[SENTINEL]));
        while (current != SENTINEL) {
            uint256 word = l.owners[current];
            if (votes[current] == _approvalOf(word)) approvers[n++] = current;
            current = address(uint160(word));
        }
        assembly ("memory-safe") {
            mstore(approvers, n)
        }
    }

    /// @dev Valid approvals and rejections of current owners (a vote counts only with its owner's epoch).
    function _countVotes(uint256 requestId) internal view returns (uint256 approvals, uint256 rejections) {
        Layout storage l = _layout();
        mapping(address => uint256) storage votes = l.votes[requestId];
        address current = address(uint160(l.owners[SENTINEL]));
        while (current != SENTINEL) {
            uint256 word = l.owners[current];
            uint256 vote = votes[current];
            uint256 approval = _approvalOf(word);
            if (vote == approval) ++approvals;
            else if (vote == approval | 1) ++rejections;
            current = address(uint160(word));
        }
    }

    // ------------------------------------------------------------------------------------------
    // Scoped calls
    // ------------------------------------------------------------------------------------------

    /// @dev Reverts for a call the vault never makes for an agent: to itself, to a token in its
    /// registry, or with a selector that moves tokens around a budget.
    function _checkCallTarget(address target, bytes4 selector) internal view {
        if (target == address(0)) revert ZeroAddress();
        if (
            target == address(this) || _layout().tokenIndex[target] != 0 || selector == 0xa9059cbb // transfer
                || selector == 0x095ea7b3 // approve
                || selector == 0x23b872dd // transferFrom
                || selector == 0xd505accf // permit (ERC-2612)
                || selector == 0x8fcbaf0c // permit (DAI)
                || selector == 0x39509351 // increaseAllowance
                || selector == 0xa22cb465 // setApprovalForAll
                || selector == 0x42842e0e // safeTransferFrom (ERC-721)
                || selector == 0xb88d4fde // safeTransferFrom with data (ERC-721)
                || selector == 0xf242432a // safeTransferFrom (ERC-1155)
                || selector == 0x2eb2c2d6 // safeBatchTransferFrom (ERC-1155)
                || selector == 0x4000aea0 // transferAndCall (ERC-677)
                || selector == 0x9bd9bbc6 // send (ERC-777)
        ) revert ForbiddenCall(target, selector);
    }

    /// @dev The EIP-712 struct hash of a call request (`dataHash` stands for `bytes data`).
    function _hashCall(CallRequest calldata r) internal pure returns (bytes32 structHash) {
        bytes32 typeHash = CALL_REQUEST_TYPEHASH;
        assembly ("memory-safe") {
            let p := mload(0x40)
            mstore(p, typeHash)
            calldatacopy(add(p, 0x20), r, 0x180)
            structHash := keccak256(p, 0x1a0)
        }
    }

    /// @dev Calls `target` with `value` and `data`, `target` approved for `spendAmount` of
    /// `spendToken` only during the call; returns what left the vault in the token. Reverts if the
    /// call fails (`CallFailed`, with at most 256 bytes of its reason) or if more left than allowed.
    function _runCall(address target, uint256 value, bytes calldata data, address spendToken, uint256 spendAmount)
        internal
        returns (uint256 spent)
    {
        if (address(this).balance < value) revert InsufficientBalance(address(0), address(this).balance, value);
        uint256 ethBefore = address(this).balance;
        uint256 tokenBefore;
        if (spendAmount != 0) {
            tokenBefore = IERC20(spendToken).balanceOf(address(this));
            IERC20(spendToken).forceApprove(target, spendAmount);
        }
        bytes memory input = data;
        bool ok;
        // no return data is copied (the target's answer is not used)
        assembly ("memory-safe") {
            ok := call(gas(), target, value, add(input, 0x20), mload(input), 0, 0)
        }
        if (!ok) {
            uint256 size;
            assembly ("memory-safe") {
                size := returndatasize()
            }
            if (size > 256) size = 256;
            bytes memory reason = new bytes(size);
            assembly ("memory-safe") {
                returndatacopy(add(reason, 0x20), 0, size)
            }
            revert CallFailed(target, reason);
        }
        if (spendAmount != 0) {
            IERC20(spendToken).forceApprove(target, 0);
            uint256 tokenAfter = IERC20(spendToken).balanceOf(address(this));
            spent = tokenBefore > tokenAfter ? tokenBefore - tokenAfter : 0;
            if (spent > spendAmount) revert CallOverspent(spendToken, spent, spendAmount);
        }
        uint256 ethAfter = address(this).balance;
        if (ethBefore > ethAfter && ethBefore - ethAfter > value) {
            revert CallOverspent(address(0), ethBefore - ethAfter, value);
        }
    }

    // ------------------------------------------------------------------------------------------
    // Transfers
    // ------------------------------------------------------------------------------------------

    /// @dev Sends ETH without copying the recipient's return data (it pays for none of it).
    function _sendEth(address to, uint256 amount) internal {
        bool ok;
        assembly ("memory-safe") {
            ok := call(gas(), to, amount, 0, 0, 0, 0)
        }
        if (!ok) revert EthTransferFailed(to, amount);
    }

    /// @dev Pays `amount` of `token` to `to` (a token's own revert if it lacks the balance).
    function _send(address token, address to, uint256 amount) internal {
        if (token == address(0)) {
            if (address(this).balance < amount) revert InsufficientBalance(token, address(this).balance, amount);
            _sendEth(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }

    /// @dev {_send}, checking a token balance first when `checked` (a typed error for requests).
    function _transferOut(address token, address to, uint256 amount, bool checked) internal {
        if (checked && token != address(0)) {
            uint256 balance = IERC20(token).balanceOf(address(this));
            if (balance < amount) revert InsufficientBalance(token, balance, amount);
        }
        _send(token, to, amount);
    }

    /// @dev The id of the request whose governance calls are running (0 for a signed batch).
    function _executing() internal view returns (uint256 requestId) {
        requestId = EXECUTING_SLOT.asUint256().tload();
        if (requestId == SIGNED_BATCH) requestId = 0;
    }
}
