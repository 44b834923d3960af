"""Personal data is encrypted at rest: the raw values never reach the database."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from creditline.bootstrap import Container
from creditline.config import Settings
from creditline.privacy import service
from creditline.privacy.adapters.aesgcm_cipher import (
    AesGcmFieldCipher,
    DecryptionError,
    load_or_create_key_file,
)
from tests.conftest import BUSINESS_DATE

RAW_ID = "11010519491231002X"
RAW_PHONE = "13812345678"


def _register(container: Container) -> str:
    customer, _ = service.register_customer(
        container.privacy_uow(),
        container.clock,
        service.RegistrationRequest("张三丰", RAW_ID, RAW_PHONE, "120000.00"),
        today=BUSINESS_DATE,
    )
    return customer.customer_id


def test_no_personal_field_is_stored_in_the_clear(container: Container, db_url: str) -> None:
    cid = _register(container)

    engine = create_engine(db_url)
    with engine.connect() as connection:
        row = connection.execute(
            text("SELECT * FROM customers WHERE customer_id = :c"), {"c": cid}
        ).one()
    engine.dispose()

    stored = repr(tuple(row))
    for raw in (RAW_ID, RAW_PHONE, "张三丰", RAW_ID[6:14]):
        assert raw not in stored
        assert raw.encode() not in b"".join(v for v in row if isinstance(v, bytes))


def test_the_sqlite_file_never_holds_the_raw_id(container: Container, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("a file-level check for the embedded database")
    _register(container)
    container.engine.dispose()  # checkpoint the WAL into the main file

    path = Path(db_url.removeprefix("sqlite:///"))
    blobs = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    assert RAW_ID.encode() not in blobs
    assert RAW_PHONE.encode() not in blobs
    assert "张三丰".encode() not in blobs


def test_a_ciphertext_moved_to_another_row_does_not_decrypt() -> None:
    cipher = AesGcmFieldCipher(os.urandom(32))
    token = cipher.encrypt(RAW_ID, context="customers.national_id:cus_1")

    with pytest.raises(DecryptionError):
        cipher.decrypt(token, context="customers.national_id:cus_2")
    assert cipher.decrypt(token, context="customers.national_id:cus_1") == RAW_ID


def test_a_tampered_ciphertext_does_not_decrypt() -> None:
    cipher = AesGcmFieldCipher(os.urandom(32))
    token = bytearray(cipher.encrypt(RAW_ID, context="c"))
    token[-1] ^= 1

    with pytest.raises(DecryptionError):
        cipher.decrypt(bytes(token), context="c")


def test_the_same_value_encrypts_differently_but_hashes_the_same() -> None:
    cipher = AesGcmFieldCipher(os.urandom(32))

    assert cipher.encrypt(RAW_ID, context="c") != cipher.encrypt(RAW_ID, context="c")
    assert cipher.lookup_hash("national_id", RAW_ID) == cipher.lookup_hash("national_id", RAW_ID)
    assert cipher.lookup_hash("national_id", RAW_ID) != AesGcmFieldCipher(
        os.urandom(32)
    ).lookup_hash("national_id", RAW_ID)


def test_the_embedded_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)

    first = load_or_create_key_file(settings.key_file)
    second = load_or_create_key_file(settings.key_file)

    assert first == second
    assert len(first) == 32
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    assert base64.b64decode(settings.key_file.read_text()) == first
