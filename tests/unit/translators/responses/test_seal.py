"""Sealed reasoning content: only what this proxy sealed, unaltered, opens."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.translators.responses.support import FAST, KEY, SEALER
from translators.openai.types import RequestError
from translators.responses import Sealer, new_key

PAYLOADS = st.dictionaries(
    st.text(max_size=8), st.text(max_size=40) | st.integers(-(2**63), 2**63 - 1), max_size=4
)


@FAST
@given(PAYLOADS)
def test_what_is_sealed_opens_unchanged(payload: dict) -> None:
    assert SEALER.open(SEALER.seal(payload), "input[0]") == payload


def test_tokens_are_versioned_and_never_repeat() -> None:
    a, b = SEALER.seal({"signature": "s"}), SEALER.seal({"signature": "s"})
    assert a.startswith("v1.") and b.startswith("v1.") and a != b  # a fresh nonce each time
    assert b"signature" not in base64.urlsafe_b64decode(a[3:] + "=" * (-len(a[3:]) % 4))  # encrypted


@FAST
@given(st.data())
def test_any_altered_byte_is_refused_naming_the_item(data: st.DataObject) -> None:
    token = SEALER.seal({"signature": "abc"})
    blob = bytearray(base64.urlsafe_b64decode(token[3:] + "=" * (-len(token[3:]) % 4)))
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(1, 255))
    forged = "v1." + base64.urlsafe_b64encode(bytes(blob)).rstrip(b"=").decode()
    with pytest.raises(RequestError) as err:
        SEALER.open(forged, "input[3]")
    assert err.value.status == 400 and err.value.param == "input[3]"
    assert str(err.value).startswith("input[3]: encrypted_content")


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1.",
        "v2.AAAA",  # another format version
        "gAAAAABo-openai-encrypted-content",  # someone else's token
        "v1.AAAA",  # truncated: shorter than nonce + tag
        "v1.@@@@",
        "v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # well formed, never sealed
    ],
)
def test_foreign_and_truncated_tokens_are_refused(token: str) -> None:
    with pytest.raises(RequestError, match=r"^input\[1\]: encrypted_content"):
        SEALER.open(token, "input[1]")


def test_a_token_of_another_key_is_refused() -> None:
    token = Sealer(new_key()).seal({"signature": "x"})
    with pytest.raises(RequestError, match="altered or was not issued by this proxy"):
        SEALER.open(token, "input[0]")
    assert Sealer(KEY).open(SEALER.seal({"a": 1}), "w") == {"a": 1}  # the same key in a new Sealer opens


def test_keys_are_256_bit() -> None:
    assert len(new_key()) == 32 and new_key() != new_key()
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")
