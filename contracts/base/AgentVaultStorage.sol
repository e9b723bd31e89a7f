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
    /// @dev Gas forwarded to an ERC-1271 owner's `isValidSignature` (a Safe checking its own
    /// owners' signatures needs far less); only its first 32 bytes of return data are read.
    uint256 internal constant ERC1271_GAS = 250_000;

    bytes32 internal constant REQUEST_TYPEHASH = keccak256(
        "Request(uint256 id,uint8 kind,address agent,uint32 lineage,address token,address to,uint256 amount,bytes32 ref,uint32 reasons,bytes data,uint40 expiresAt)"
    );
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
    /// @dev A request record is `hash (high 216 bits) | creation block (40 bits)` while pending and
    /// `status << 40 | creation block` once closed.
    uint256 internal constant BLOCK_BITS = 40;
    uint256 internal constant BLOCK_MASK = (1 << 40) - 1;
    /// @dev Transient slot holding the id of the governance request being executed.
    bytes32 internal constant EXECUTING_SLOT = keccak256("agentwallet.AgentVault.executingRequest");

    /// @dev keccak256(abi.encode(uint256(keccak256("agentwallet.vault")) - 1)) & ~bytes32(uint256(0xff))
    bytes32 private constant LAYOUT_SLOT = 0xe79e714abe350f418da5842700fa6185b1c082738decf0346d4aa06561fc6200;

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
        bool useAllowlist;
        uint40 validAfter;
        uint40 validUntil;
        uint16 openRequests;
        uint32 lineage;
        uint8 position; // 1-based place in the agent list; 0 = not listed
        uint8 tokenCount;
        uint64 tokens; // registry indices of the tokens it has limits for, 8 bits each
        uint32 parent; // lineage of the delegating agent; 0 = added by the owners
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
        /// request id => record (see BLOCK_BITS)
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
    }

    function _layout() internal pure returns (Layout storage l) {
        assembly ("memory-safe") {
            l.slot := LAYOUT_SLOT
        }
    }

    /// @dev The deployed contract's own address: a call that is not a delegatecall runs with it.
    address private immutable SELF;

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

    modifier onlyVault() {
        if (msg.sender != address(this)) revert OnlyVault(msg.sender);
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
    /// most ERC1271_GAS gas, and only 32 bytes of its answer are read.
    function _checkSignatures(bytes32 digest, bytes calldata signatures, uint256 count)
        internal
        view
        returns (address[] memory signers)
    {
        uint256 staticEnd = count * 65;
        if (signatures.length < staticEnd) revert NotEnoughSignatures(signatures.length / 65, count);
        signers = new address[](count);
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            uint256 pos = i * 65;
            bytes32 r = bytes32(signatures[pos:pos + 32]);
            bytes32 s = bytes32(signatures[pos + 32:pos + 64]);
            uint8 v = uint8(signatures[pos + 64]);
            address signer;
            if (v == 0) {
                // ERC-1271 owner: r = its address, s = offset of its length-prefixed signature.
                if (uint256(r) >> 160 != 0) revert InvalidSignature(address(0));
                signer = address(uint160(uint256(r)));
            } else {
                ECDSA.RecoverError error;
                // slither-disable-next-line unused-return (the third value only details `error`)
                (signer, error,) = ECDSA.tryRecover(digest, v, r, s);
                if (error != ECDSA.RecoverError.NoError) revert InvalidSignature(address(0));
            }
            if (signer <= previous) revert SignersNotSorted(previous, signer);
            if (!_isOwner(signer)) revert NotAnOwner(signer);
            if (v == 0) {
                uint256 offset = uint256(s);
                if (offset < staticEnd || offset > signatures.length - 32) revert InvalidSignature(signer);
                uint256 length = uint256(bytes32(signatures[offset:offset + 32]));
                if (length > signatures.length - offset - 32) revert InvalidSignature(signer);
                if (!_isValidERC1271(signer, digest, signatures[offset + 32:offset + 32 + length])) {
                    revert InvalidSignature(signer);
                }
            }
            previous = signer;
            signers[i] = signer;
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
        return a.useAllowlist ? PolicyWord.FLAGS : PolicyWord.FAST;
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

    /// @dev The EIP-712 struct hash of a request (`dataHash` stands for the `bytes data` member).
    function _hashRequest(Request memory r) internal pure returns (bytes32) {
        return keccak256(
            abi.encode(
                REQUEST_TYPEHASH,
                r.id,
                uint8(r.kind),
                r.agent,
                r.lineage,
                r.token,
                r.to,
                r.amount,
                r.ref,
                r.reasons,
                r.dataHash,
                r.expiresAt
            )
        );
    }

    /// @dev Stores a new pending request from `agent` and emits {RequestCreated}.
    function _newRequest(
        RequestKind kind,
        address agent,
        uint32 lineage,
        address token,
        address to,
        uint256 amount,
        bytes32 ref,
        uint32 reasons,
        bytes memory data
    ) internal returns (uint256 requestId) {
        Layout storage l = _layout();
        Config memory c = l.config;
        requestId = uint256(c.requestCount) + 1;
        if (requestId > type(uint64).max) revert CounterOverflow();
        l.config.requestCount = uint64(requestId);
        uint40 expiresAt = uint40(block.timestamp + c.requestExpiry);
        Request memory r = Request({
            id: requestId,
            kind: kind,
            agent: agent,
            lineage: lineage,
            token: token,
            to: to,
            amount: amount,
            ref: ref,
            reasons: reasons,
            dataHash: kind == RequestKind.Payment ? EMPTY_HASH : keccak256(data),
            expiresAt: expiresAt
        });
        l.requests[requestId] = (uint256(_hashRequest(r)) & ~BLOCK_MASK) | (block.number & BLOCK_MASK);
        emit RequestCreated(requestId, agent, token, kind, lineage, to, amount, ref, reasons, expiresAt, data);
    }

    /// @dev Escalates an agent's payment into a request, within its open-request allowance.
    function _newPaymentRequest(address agent, address token, address to, uint256 amount, bytes32 ref, uint32 reasons)
        internal
        returns (uint256)
    {
        Layout storage l = _layout();
        Agent storage a = l.agents[agent];
        uint256 open = a.openRequests;
        uint256 max = l.config.maxOpenRequests;
        if (open >= max) revert TooManyOpenRequests(agent, open, max);
        a.openRequests = uint16(open + 1);
        return _newRequest(RequestKind.Payment, agent, a.lineage, token, to, amount, ref, reasons, "");
    }

    /// @dev The word of a payment request's agent lineage, at its current key (following rotations).
    function _requestAgent(Request memory r) internal view returns (Agent storage a) {
        Layout storage l = _layout();
        a = l.agents[r.agent];
        if (a.lineage != r.lineage || a.status == AgentStatus.Rotated) a = l.agents[l.lineageKey[r.lineage]];
    }

    /// @dev Whether an agent word still belongs to `lineage` and may act (active or paused).
    function _alive(Agent storage a, uint32 lineage) internal view returns (bool) {
        AgentStatus s = a.status;
        return a.lineage == lineage && (s == AgentStatus.Active || s == AgentStatus.Paused);
    }

    /// @dev Valid approvals and rejections of current owners (a vote counts only with its owner's epoch).
    function _countVotes(uint256 requestId) internal view returns (uint256 approvals, uint256 rejections) {
        Layout storage l = _layout();
        mapping(address => uint256) storage votes = l.votes[requestId];
        address current = address(uint160(l.owners[SENTINEL]));
        while (current != SENTINEL) {
            uint256 word = l.owners[current];
            uint256 vote = votes[current];
            uint256 approval = (word >> 160) << 1;
            if (vote == approval) ++approvals;
            else if (vote == approval | 1) ++rejections;
            current = address(uint160(word));
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

    /// @dev Pays `amount` of `token` to `to`, checking the vault's balance first when `checked`.
    function _transferOut(address token, address to, uint256 amount, bool checked) internal {
        if (token == address(0)) {
            if (address(this).balance < amount) revert InsufficientBalance(token, address(this).balance, amount);
            _sendEth(to, amount);
        } else {
            if (checked) {
                uint256 balance = IERC20(token).balanceOf(address(this));
                if (balance < amount) revert InsufficientBalance(token, balance, amount);
            }
            IERC20(token).safeTransfer(to, amount);
        }
    }

    function _executing() internal view returns (uint256) {
        return EXECUTING_SLOT.asUint256().tload();
    }
}
