import os
import pickle
import stat
import traceback
from pathlib import Path

import pytest

from agentwallet.errors import (
    InsecureKeystoreError,
    KeyExistsError,
    KeyStoreError,
    PasswordRequiredError,
    UnknownKeyError,
    WrongPasswordError,
)
from agentwallet.keys import KeyStore, Signer, home_dir

KEY = "0x" + "ab" * 31 + "cd"


def test_create_list_load_round_trip(keystore: KeyStore) -> None:
    alice = keystore.create("alice", "pw-alice")
    bob = keystore.import_key("bob", KEY, "pw-bob")
    assert [k.name for k in keystore.list()] == ["alice", "bob"]
    assert keystore.info("bob") == bob
    loaded = keystore.load("alice", "pw-alice")
    assert loaded.address == alice.address and loaded.name == "alice"
    assert keystore.load("bob", "pw-bob").address == Signer.from_key(KEY).address


def test_home_dir_follows_the_environment(home: Path) -> None:
    assert home_dir() == home
    assert KeyStore().directory == home / "keys"


def test_keystore_file_is_mode_0600_and_scrypt(keystore: KeyStore) -> None:
    info = keystore.create("k", "pw")
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    assert '"kdf": "scrypt"' in info.path.read_text()
    assert not list(keystore.directory.glob(".*.tmp"))


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660, 0o644])
def test_group_or_world_accessible_keystore_is_refused(keystore: KeyStore, mode: int) -> None:
    info = keystore.create("k", "pw")
    os.chmod(info.path, mode)
    with pytest.raises(InsecureKeystoreError, match=f"chmod 600 {info.path}"):
        keystore.load("k", "pw")


@pytest.mark.parametrize("mode", [0o777, 0o757, 0o770, 0o720])
def test_group_or_world_writable_keys_directory_is_refused(keystore: KeyStore, mode: int) -> None:
    keystore.create("k", "pw")
    os.chmod(keystore.directory, mode)
    try:
        fix = f"chmod 700 {keystore.directory}"
        with pytest.raises(InsecureKeystoreError, match=fix):
            keystore.load("k", "pw")
        with pytest.raises(InsecureKeystoreError, match=fix):
            keystore.create("other", "pw")
        assert not (keystore.directory / "other.json").exists()
    finally:
        os.chmod(keystore.directory, 0o700)
    assert keystore.load("k", "pw").name == "k"


def test_readable_keys_directory_with_private_keystores_is_accepted(keystore: KeyStore) -> None:
    info = keystore.create("k", "pw")
    os.chmod(keystore.directory, 0o755)
    assert keystore.load("k", "pw").address == info.address


def test_wrong_password(keystore: KeyStore) -> None:
    keystore.create("k", "right")
    with pytest.raises(WrongPasswordError, match="wrong password for key 'k'"):
        keystore.load("k", "wrong")


def test_password_from_environment_or_required(
    keystore: KeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    keystore.create("k", "envpw")
    with pytest.raises(PasswordRequiredError, match="AGENTWALLET_PASSWORD"):
        keystore.load("k")
    monkeypatch.setenv("AGENTWALLET_PASSWORD", "envpw")
    assert keystore.load("k").name == "k"


def test_unknown_key_lists_known_names(keystore: KeyStore) -> None:
    keystore.create("alice", "pw")
    with pytest.raises(UnknownKeyError, match="known: alice"):
        keystore.load("mallory", "pw")


def test_existing_name_is_refused_and_not_overwritten(keystore: KeyStore) -> None:
    first = keystore.create("k", "pw")
    before = first.path.read_bytes()
    with pytest.raises(KeyExistsError):
        keystore.import_key("k", KEY, "pw")
    assert first.path.read_bytes() == before


@pytest.mark.parametrize("name", ["", "../evil", "a/b", ".hidden", "x" * 65])
def test_bad_key_names_are_refused(keystore: KeyStore, name: str) -> None:
    with pytest.raises(KeyStoreError):
        keystore.create(name, "pw")


def _secrets_of(key: str) -> list[str]:
    bare = key.removeprefix("0x")
    return [bare, bare.upper(), "0x" + bare]


def test_private_key_never_appears_in_repr_str_or_errors(keystore: KeyStore) -> None:
    keystore.import_key("k", KEY, "pw")
    signer = keystore.load("k", "pw")
    texts = [repr(signer), str(signer), f"{signer}", repr(keystore), repr(keystore.info("k"))]
    with pytest.raises(TypeError) as caught:
        pickle.dumps(signer)
    texts.append(str(caught.value))
    with pytest.raises(KeyStoreError) as bad:
        Signer.from_key(KEY[:-2] + "zz")  # an almost-key must not be echoed either
    texts.append(str(bad.value))
    for text in texts:
        for secret in _secrets_of(KEY) + _secrets_of(KEY[:-2] + "zz"):
            assert secret not in text
    assert not hasattr(signer, "key") and not hasattr(signer, "__dict__")


def test_traceback_with_a_signer_local_does_not_leak_the_key(keystore: KeyStore) -> None:
    keystore.import_key("k", KEY, "pw")

    def fail_while_holding_a_signer() -> None:
        signer = keystore.load("k", "pw")
        raise RuntimeError(f"payment failed for {signer}")

    try:
        fail_while_holding_a_signer()
    except RuntimeError as exc:
        text = traceback.format_exc()
        # with locals too (as pytest --showlocals or a crash reporter would print them)
        exc_text = "".join(
            traceback.TracebackException.from_exception(exc, capture_locals=True).format()
        )
    for secret in _secrets_of(KEY):
        assert secret not in text
        assert secret not in exc_text
    assert "Signer(name='k'" in text and "signer = Signer(name='k'" in exc_text


def test_signer_signs_like_the_account(keystore: KeyStore) -> None:
    from eth_account import Account

    keystore.import_key("k", KEY, "pw")
    signer = keystore.load("k", "pw")
    tx = {
        "to": signer.address,
        "value": 1,
        "gas": 21000,
        "maxFeePerGas": 10**9,
        "maxPriorityFeePerGas": 10**9,
        "nonce": 0,
        "chainId": 1,
    }
    assert signer.sign_transaction(tx).raw_transaction == (
        Account.from_key(KEY).sign_transaction(tx).raw_transaction
    )
    digest = b"\x11" * 32
    assert signer.unsafe_sign_hash(digest).signature == (
        Account.from_key(KEY).unsafe_sign_hash(digest).signature
    )
