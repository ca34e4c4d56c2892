"""The base64url check every envelope passes: the same verdict as strict decoding."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tillit.safety.errors import ProtocolError
from tillit.safety.validation import b64u, b64u_length

ALPHABET = string.ascii_letters + string.digits + "-_"


@given(st.binary(max_size=300))
def test_length_is_the_decoded_size(raw: bytes) -> None:
    text = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert b64u_length(text) == len(raw)


@given(st.text(alphabet=ALPHABET + "+/=\n .", max_size=40))
def test_accepts_exactly_unpadded_base64url(text: str) -> None:
    valid = all(ch in ALPHABET for ch in text) and len(text) % 4 != 1
    if valid:
        padded = text + "=" * (-len(text) % 4)
        assert b64u_length(text) == len(base64.b64decode(padded, altchars=b"-_", validate=True))
    else:
        with pytest.raises(ValueError):
            b64u_length(text)


@pytest.mark.parametrize("text", ["QUJD\n", "QUJD=", "QU JD", "QUJD+/"])
def test_ciphertext_with_stray_characters_is_invalid(text: str) -> None:
    with pytest.raises(ProtocolError) as err:
        b64u(min_bytes=1)("ct", text)
    assert err.value.code == "invalid_payload"


@pytest.mark.parametrize("value", ["tök", "ÄÄÄÄ", "abc\u00e9def", "٣٣٣", "abc def", "a+b"])
def test_a_token_with_any_character_outside_base64url_is_invalid(value: str) -> None:
    """`re.match` of a pattern that may match nothing accepted every string; a
    non-ASCII resume token then failed in the chat logic as `internal`."""
    from tillit.safety.validation import token

    with pytest.raises(ProtocolError) as err:
        token(64)("resume_token", value)
    assert err.value.code == "invalid_payload"
