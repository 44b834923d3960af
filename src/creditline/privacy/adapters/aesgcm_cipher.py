"""Field encryption with AES-256-GCM and keyed look-up hashes (HMAC-SHA256).

Each value gets a fresh 96-bit nonce; the token is `version byte ‖ nonce ‖ ciphertext+tag`.
The context (table, column, customer id) is bound as associated data, so a ciphertext
copied into another row or column fails to decrypt. Two sub-keys are derived from the
master key with HKDF: one for encryption, one for look-up hashes, so that the hash never
reveals anything about the encryption key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_VERSION = b"\x01"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """A token was tampered with, moved to another context, or made with another key."""


class AesGcmFieldCipher:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the data-encryption key must be 32 bytes (AES-256)")
        self._aead = AESGCM(_derive(master_key, b"creditline field encryption v1"))
        self._mac_key = _derive(master_key, b"creditline lookup hash v1")

    def encrypt(self, plaintext: str, *, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return _VERSION + nonce + sealed

    def decrypt(self, token: bytes, *, context: str) -> str:
        if token[:1] != _VERSION:
            raise DecryptionError("unknown token version")
        nonce, sealed = token[1 : 1 + _NONCE_BYTES], token[1 + _NONCE_BYTES :]
        try:
            plain = self._aead.decrypt(nonce, sealed, context.encode("utf-8"))
        except Exception as error:  # cryptography raises InvalidTag
            raise DecryptionError(f"cannot decrypt a field in context {context!r}") from error
        return plain.decode("utf-8")

    def lookup_hash(self, kind: str, value: str) -> str:
        message = f"{kind}\x00{value}".encode()
        return hmac.new(self._mac_key, message, hashlib.sha256).hexdigest()


def _derive(master_key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master_key)


def decode_key(text: str) -> bytes:
    """A key from its base64 form (as `CREDITLINE_ENCRYPTION_KEY` holds it)."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except ValueError as error:
        raise ValueError("the encryption key must be base64") from error
    if len(key) != 32:
        raise ValueError(f"the encryption key must decode to 32 bytes, got {len(key)}")
    return key


def load_or_create_key_file(path: Path) -> bytes:
    """The embedded default's key: made once with 0600 permissions, then reused."""
    if path.exists():
        return decode_key(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return decode_key(path.read_text())
    with os.fdopen(descriptor, "w") as handle:
        handle.write(base64.b64encode(key).decode() + "\n")
    return key
