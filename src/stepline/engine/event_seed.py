"""Events' internal ids from an `X-Inngest-Event-Id-Seed` header (protocol §8.3).

An Inngest SDK sends `"<unix ms>,<base64 of 10 random bytes>"` with each request to the event
API, and the same value again with each retry of that request. The event at 1-based position
`i` gets the ULID of those milliseconds and that entropy, with `i` added (modulo 2³²) to the
big-endian number in its last four bytes. A retried request thus yields the ids of its first
attempt, which is how the server recognises it. A missing or malformed seed yields none (the
events get random ids).
"""

from __future__ import annotations

import base64
import binascii
import re

from ulid import ULID

ENTROPY_BYTES = 10
MAX_MILLIS = 2**48 - 1  # a ULID's timestamp has 48 bits
_MILLIS = re.compile(r"\+?[0-9]{1,19}")  # as Go parses an int64


def _parse(seed: str) -> tuple[int, bytes] | None:
    """(milliseconds, entropy) of a well-formed seed; None otherwise."""
    millis_text, comma, entropy_text = seed.partition(",")
    if not comma or not _MILLIS.fullmatch(millis_text):
        return None
    millis = int(millis_text)
    if not 0 < millis <= MAX_MILLIS:
        return None
    try:
        entropy = base64.b64decode(entropy_text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return (millis, entropy) if len(entropy) == ENTROPY_BYTES else None


def seeded_ids(seed: str | None, count: int) -> list[str] | None:
    """The internal ids of `count` events sent in one request with `seed`; None if no seed.

    Example: seed "1700000000000,AAECAwQFBgcICQ==" gives "01HF7YAT00000G40R40M30E20A" to the
    first event and "01HF7YAT00000G40R40M30E20B" to the second.
    """
    parsed = None if seed is None else _parse(seed)
    if parsed is None:
        return None
    millis, entropy = parsed
    prefix = millis.to_bytes(6, "big") + entropy[:6]
    counter = int.from_bytes(entropy[6:], "big")
    return [
        str(ULID.from_bytes(prefix + ((counter + position) % 2**32).to_bytes(4, "big")))
        for position in range(1, count + 1)
    ]
