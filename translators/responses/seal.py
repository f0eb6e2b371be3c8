"""Sealed `encrypted_content` for reasoning items: what the proxy must get back, opaque to the client.

A reasoning item carries the upstream's thought signature to the client and back (Codex runs with
`store: false`, so the conversation lives in the client). AES-256-GCM authenticates it: a token that was
altered, cut short or minted by someone else (another proxy, OpenAI itself) fails to open with a clear
400 instead of reaching the upstream. Token: `v1.` + base64url(96-bit random nonce + ciphertext + tag);
the associated data binds the format label, so a token of a future format never opens as this one.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from translators import json_codec
from translators.openai.types import RequestError

_VERSION = "v1"
_LABEL = b"llm-intercept/responses/reasoning/v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_TOKEN = re.compile(r"v1\.([A-Za-z0-9_-]+)")


def new_key() -> bytes:
    """A fresh 256-bit key; the caller keeps it (the proxy's state folder) so tokens survive restarts."""
    return AESGCM.generate_key(bit_length=256)


class Sealer:
    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the sealing key must be 32 bytes (AES-256)")
        self._aead = AESGCM(key)

    def seal(self, payload: dict[str, Any]) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, json_codec.dumps(payload), _LABEL)
        return f"{_VERSION}." + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str, where: str) -> dict[str, Any]:
        """The payload of a token this proxy sealed; RequestError(400) naming `where` for anything else."""
        match = _TOKEN.fullmatch(token) if isinstance(token, str) else None
        if match is None:
            raise _refused(where, "is not in this proxy's format")
        text = match.group(1)
        try:
            blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise _refused(where, "is not valid base64url") from None
        if len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise _refused(where, "is truncated")
        try:
            plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _LABEL)
        except InvalidTag:
            raise _refused(where, "was altered or was not issued by this proxy") from None
        payload = json_codec.loads(plain)
        if not isinstance(payload, dict):
            raise _refused(where, "holds no object")
        return payload


def _refused(where: str, why: str) -> RequestError:
    return RequestError(
        f"{where}: encrypted_content {why}; send reasoning items back exactly as this proxy returned them",
        param=where,
    )
