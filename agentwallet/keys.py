"""Named, encrypted keys: eth-account scrypt V3 keystores under ``$AGENTWALLET_HOME/keys/``.

Keystore files are created exclusively with mode 0600 (never overwritten), and a keystore that
group or others can read or write is refused. A loaded key is a :class:`Signer`, which never shows
its private key in a repr, a message or a traceback.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from eth_account import Account
from eth_account.datastructures import SignedMessage, SignedTransaction
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.base import BaseAccount
from eth_account.signers.local import LocalAccount
from eth_account.types import TransactionDictType
from eth_typing import ChecksumAddress, Hash32

from agentwallet.errors import (
    InsecureKeystoreError,
    KeyExistsError,
    KeyStoreError,
    PasswordRequiredError,
    UnknownKeyError,
    WrongPasswordError,
)

PASSWORD_ENV = "AGENTWALLET_PASSWORD"
HOME_ENV = "AGENTWALLET_HOME"
#: scrypt cost (N) for new keystores; tests may lower it with AGENTWALLET_SCRYPT_N (never in use).
SCRYPT_N_ENV = "AGENTWALLET_SCRYPT_N"
DEFAULT_SCRYPT_N = 2**18
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def home_dir() -> Path:
    """``$AGENTWALLET_HOME``, default ``~/.agentwallet``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".agentwallet")


@dataclass(frozen=True)
class KeyInfo:
    """A stored key: its name, checksummed address and keystore path (no secret)."""

    name: str
    address: str
    path: Path


if TYPE_CHECKING:
    _AccountBase = BaseAccount
else:
    _AccountBase = object


class Signer(_AccountBase):
    """A decrypted key: an eth-account :class:`~eth_account.signers.base.BaseAccount`, so it
    signs wherever agentwallet (or eth-account, or web3) takes an account.

    The eth-account ``LocalAccount`` lives in a private slot; ``repr``/``str`` show only the
    name and address, and the object refuses to be pickled or copied. (It is registered as a
    virtual ``BaseAccount`` subclass rather than inheriting from it, because ``BaseAccount`` has
    no ``__slots__`` and every instance would grow a ``__dict__``.)
    """

    __slots__ = ("_account", "_name")

    def __init__(self, name: str, account: LocalAccount) -> None:
        self._name = name
        self._account = account

    @classmethod
    def from_key(cls, private_key: str | bytes, name: str = "unnamed") -> Signer:
        """A signer for a raw private key (hex with or without 0x, or 32 bytes)."""
        try:
            account = Account.from_key(private_key)
        except Exception:  # noqa: BLE001 - the message could echo the key
            raise KeyStoreError(
                "that is not a valid private key: give 32 bytes as 64 hex digits"
            ) from None
        return cls(name, account)

    @property
    def name(self) -> str:
        """The key's name in the keystore."""
        return self._name

    @property
    def address(self) -> ChecksumAddress:
        """The checksummed address."""
        return self._account.address

    def sign_transaction(self, transaction_dict: TransactionDictType) -> SignedTransaction:
        """Sign a complete transaction dict (nonce, gas, fees, chainId filled in)."""
        return self._account.sign_transaction(transaction_dict)

    def sign_message(self, signable_message: SignableMessage) -> SignedMessage:
        """Sign an EIP-191 message (e.g. ``encode_typed_data(...)``)."""
        return self._account.sign_message(signable_message)

    def sign_typed_data(self, full_message: dict[str, Any]) -> SignedMessage:
        """Sign an EIP-712 message given as one dict (types, primaryType, domain, message)."""
        return self.sign_message(encode_typed_data(full_message=full_message))

    def unsafe_sign_hash(self, message_hash: Hash32 | bytes) -> SignedMessage:
        """Sign a raw 32-byte digest. Only for digests computed and checked by the caller."""
        return self._account.unsafe_sign_hash(Hash32(bytes(message_hash)))

    def __repr__(self) -> str:
        return f"Signer(name={self._name!r}, address={self.address})"

    __str__ = __repr__

    def __getstate__(self) -> NoReturn:
        raise TypeError("a Signer holds a private key and cannot be pickled or copied")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Signer holds a private key and cannot be pickled or copied")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signer) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)


BaseAccount.register(Signer)


class KeyStore:
    """The keystores in ``<home>/keys`` (``home`` defaults to :func:`home_dir`)."""

    def __init__(self, home: Path | None = None, *, scrypt_n: int | None = None) -> None:
        self.home = Path(home) if home is not None else home_dir()
        self.directory = self.home / "keys"
        env_n = os.environ.get(SCRYPT_N_ENV)
        self.scrypt_n = scrypt_n or (int(env_n) if env_n else DEFAULT_SCRYPT_N)

    def __repr__(self) -> str:
        return f"KeyStore({str(self.directory)!r})"

    # ------------------------------------------------------------------ creation

    def create(self, name: str, password: str) -> KeyInfo:
        """Generate a new random key, store it encrypted as ``name``; return its info."""
        return self._store(name, "0x" + secrets.token_hex(32), password)

    def import_key(self, name: str, private_key: str, password: str) -> KeyInfo:
        """Store an existing private key (hex, with or without 0x) encrypted as ``name``."""
        return self._store(name, private_key, password)

    def _store(self, name: str, private_key: str, password: str) -> KeyInfo:
        self._check_name(name)
        if not password:
            raise PasswordRequiredError(f"give a non-empty password to encrypt key {name!r}")
        path = self._path(name)
        if path.exists():
            raise KeyExistsError(
                f"a key named {name!r} already exists at {path}: choose another name"
            )
        signer = Signer.from_key(private_key, name)
        self._check_directory()
        keystore = Account.encrypt(
            signer._account.key, password, kdf="scrypt", iterations=self.scrypt_n
        )
        payload = json.dumps({**keystore, "name": name}, indent=2).encode()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.directory / f".{name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)  # fails if the name was taken meanwhile: never overwrite
            except FileExistsError:
                raise KeyExistsError(
                    f"a key named {name!r} already exists at {path}: choose another name"
                ) from None
        finally:
            tmp.unlink(missing_ok=True)
        return KeyInfo(name, signer.address, path)

    # ------------------------------------------------------------------ lookup

    def list(self) -> list[KeyInfo]:
        """Every stored key, sorted by name."""
        if not self.directory.is_dir():
            return []
        result = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                result.append(self._info(path))
            except KeyStoreError:
                continue
        return result

    def info(self, name: str) -> KeyInfo:
        """The stored key ``name``; :class:`UnknownKeyError` (listing known names) if absent."""
        path = self._path(name)
        if not path.is_file():
            known = ", ".join(k.name for k in self.list()) or "none"
            raise UnknownKeyError(
                f"no key named {name!r} in {self.directory} (known: {known}): "
                "create one with `agentwallet key new NAME`"
            )
        return self._info(path)

    def load(self, name: str, password: str | None = None) -> Signer:
        """Decrypt key ``name``. ``password`` None -> ``$AGENTWALLET_PASSWORD``, else
        :class:`PasswordRequiredError`. Refuses group/world-accessible keystores."""
        info = self.info(name)
        self._check_directory()
        mode = info.path.stat().st_mode & 0o777
        if mode & 0o077:
            raise InsecureKeystoreError(
                f"keystore {info.path} has mode {oct(mode)}: group/others can access it; "
                f"fix it with `chmod 600 {info.path}`"
            )
        if password is None:
            password = os.environ.get(PASSWORD_ENV)
            if password is None:
                raise PasswordRequiredError(
                    f"key {name!r} needs a password: pass it or set {PASSWORD_ENV}"
                )
        keystore = json.loads(info.path.read_text())
        keystore.pop("name", None)
        try:
            key = Account.decrypt(keystore, password)
        except ValueError:
            raise WrongPasswordError(f"wrong password for key {name!r} ({info.path})") from None
        return Signer(name, Account.from_key(key))

    # ------------------------------------------------------------------ helpers

    def _check_directory(self) -> None:
        """Refuse a keys directory that group or others can write (:class:`InsecureKeystoreError`
        with the ``chmod`` to run): they could delete a keystore or swap in one of their own."""
        if not self.directory.is_dir():
            return
        mode = self.directory.stat().st_mode & 0o777
        if mode & 0o022:
            raise InsecureKeystoreError(
                f"keys directory {self.directory} has mode {oct(mode)}: group/others can "
                f"write it and swap or delete keystores; fix it with "
                f"`chmod 700 {self.directory}`"
            )

    def _path(self, name: str) -> Path:
        self._check_name(name)
        return self.directory / f"{name}.json"

    @staticmethod
    def _check_name(name: str) -> None:
        if not _NAME_RE.match(name or ""):
            raise KeyStoreError(
                f"invalid key name {name!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )

    @staticmethod
    def _info(path: Path) -> KeyInfo:
        try:
            data = json.loads(path.read_text())
            address = data["address"]
        except (OSError, ValueError, KeyError):
            raise KeyStoreError(f"{path} is not a readable V3 keystore") from None
        from eth_utils.address import to_checksum_address

        return KeyInfo(path.stem, to_checksum_address("0x" + str(address).removeprefix("0x")), path)
