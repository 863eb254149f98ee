"""Signing keys: request signatures, response checks and bearer tokens (protocol §4).

A key is `signkey-<env>-<hex>` or bare hex. Requests to an SDK are signed with HMAC-SHA256
keyed by the UTF-8 bytes of the prefix-stripped key over the JCS body followed by the Unix
time in seconds; SDKs sign their responses the same way over the raw bytes; SDK calls to the
server carry `Bearer <SHA-256 of the hex-decoded key>` (js keeps the `signkey-<env>-` prefix).
Keys never appear in a repr, a log line or an exception message.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jcs  # type: ignore[import-untyped]

from stepline.errors import ConfigurationError

MIN_HEX_DIGITS = 32
"""The shortest secret accepted: 16 bytes (Inngest's own keys have 64 hex digits)."""

_PREFIX = re.compile(r"^signkey-\w+-", re.ASCII)
_HEX = re.compile(r"[0-9a-fA-F]*")
_DIGEST = re.compile(r"[0-9a-fA-F]{64}")
_SECONDS = re.compile(r"[0-9]{1,12}")


def strip_prefix(key: str) -> str:
    """The key without its `signkey-<env>-` prefix, if it has one."""
    return _PREFIX.sub("", key, count=1)


def _hex_problem(secret: str) -> str | None:
    """What is wrong with a prefix-stripped key, or None; never quotes the key."""
    if not secret:
        return "is empty"
    if not _HEX.fullmatch(secret):
        return "is not hexadecimal"
    if len(secret) % 2:
        return "has an odd number of hex digits"
    return None


def hashed_key(key: str) -> str:
    """The key's bearer-token form: hex SHA-256 of the hex-decoded secret, without prefix.

    Raises:
        ConfigurationError: The key's secret is not even-length hex.
    """
    secret = strip_prefix(key)
    problem = _hex_problem(secret)
    if problem:
        raise ConfigurationError(f"signing key {problem}")
    return hashlib.sha256(bytes.fromhex(secret)).hexdigest()


def canonical(value: Any) -> bytes:
    """The JCS (RFC 8785) bytes of a plain JSON value: the exact body to sign and send.

    Raises:
        ValueError: The value holds a NaN or infinite number.
        TypeError: The value holds something JSON cannot (a non-string key, bytes, ...).
    """
    try:
        data: bytes = jcs.canonicalize(value)
    except AttributeError as error:  # jcs calls .encode() on every object key
        raise TypeError("JSON object keys must be strings") from error
    return data


def signature_header(body: bytes, key: str, at: int) -> str:
    """The `X-Inngest-Signature` value `t=<at>&s=<hex HMAC>` for `body` signed at `at`."""
    mac = hmac.new(strip_prefix(key).encode(), body + str(at).encode(), hashlib.sha256)
    return f"t={at}&s={mac.hexdigest()}"


def _parse_signature(header: str) -> tuple[int, str] | None:
    """`(t, s)` of a `t=<seconds>&s=<hex>` header (either order), or None if malformed."""
    fields: dict[str, str] = {}
    for part in header.split("&"):
        name, sep, value = part.partition("=")
        if not sep or name not in ("t", "s") or name in fields:
            return None
        fields[name] = value
    t, s = fields.get("t", ""), fields.get("s", "")
    if not _SECONDS.fullmatch(t) or not _DIGEST.fullmatch(s):
        return None
    return int(t), s.lower()


def _bearer_token(authorization: str) -> str | None:
    """The token of a `Bearer <token>` header with any key prefix removed, or None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return strip_prefix(token)


def _same(a: str, b: str) -> bool:
    """Constant-time string equality (safe for any characters)."""
    return hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True, repr=False)
class SigningKeys:
    """The server's signing key and an optional fallback accepted during rotation.

    Args:
        primary: `signkey-<env>-<hex>` or bare hex; signs requests.
        fallback: A second key, accepted wherever the primary is.

    Raises:
        ConfigurationError: A key is not `signkey-<env>-<hex>` or bare hex with an even
            number of (at least `MIN_HEX_DIGITS`) hex digits.
    """

    primary: str
    fallback: str | None = None

    def __post_init__(self) -> None:
        _check_key("signing key", self.primary)
        if self.fallback is not None:
            _check_key("fallback signing key", self.fallback)

    def __repr__(self) -> str:
        fallback = "None" if self.fallback is None else "'<hidden>'"
        return f"SigningKeys(primary='<hidden>', fallback={fallback})"

    def _keys(self) -> tuple[str, ...]:
        """The primary key, then the fallback if any."""
        return (self.primary,) if self.fallback is None else (self.primary, self.fallback)

    def sign(self, body: bytes, now: datetime) -> str:
        """The `X-Inngest-Signature` of a request body (the exact bytes sent), signed at `now`."""
        return signature_header(body, self.primary, int(now.timestamp()))

    def verify(
        self, header: str | None, body: bytes, now: datetime, max_age_seconds: float = 300
    ) -> bool:
        """Whether an SDK response's `X-Inngest-Signature` matches its raw body.

        Args:
            header: The header value, or None if absent.
            body: The response bytes exactly as received.
            now: The current time.
            max_age_seconds: How far `t` may be from `now`, either way.
        """
        parsed = None if header is None else _parse_signature(header)
        if parsed is None:
            return False
        at, signature = parsed
        if abs(now.timestamp() - at) > max_age_seconds:
            return False
        matched = False
        for key in self._keys():
            expected = signature_header(body, key, at).rpartition("=")[2]
            matched |= _same(signature, expected)
        return matched

    def accepts_bearer(self, authorization: str | None) -> bool:
        """Whether an `Authorization` header carries one of the keys, raw or hashed.

        The token may carry a `signkey-<env>-` prefix (js) or not (py); it matches a key whose
        prefix-stripped hex or hashed form (`hashed_key`) equals it.
        """
        token = None if authorization is None else _bearer_token(authorization)
        if not token:
            return False
        matched = False
        for key in self._keys():
            matched |= _same(token, strip_prefix(key)) | _same(token, hashed_key(key))
        return matched


def _check_key(field: str, key: str) -> None:
    """Raise ConfigurationError naming `field` if `key` is not a usable signing key."""
    if key.startswith("signkey-") and not _PREFIX.match(key):
        raise ConfigurationError(f"{field} must look like signkey-<env>-<hex> or be bare hex")
    secret = strip_prefix(key)
    problem = _hex_problem(secret)
    if problem:
        raise ConfigurationError(f"{field} {problem} (expected signkey-<env>-<hex> or bare hex)")
    if len(secret) < MIN_HEX_DIGITS:
        raise ConfigurationError(f"{field} is too short: use at least {MIN_HEX_DIGITS} hex digits")
