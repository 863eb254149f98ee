"""The reason a person gives for an action (cancel, replay, rerun, pause): free text, optional.

Stored with what the action touched and shown wherever that is shown, so it is bounded and
holds nothing the stores refuse.
"""

from __future__ import annotations

from stepline import errors

MAX_REASON_CHARS = 500


def given_reason(text: str | None, field: str = "reason") -> str | None:
    """The reason as stored: trimmed, None when blank.

    Raises:
        InvalidInput: Longer than `MAX_REASON_CHARS`, or holding NUL or a lone surrogate.
    """
    if text is None or not text.strip():
        return None
    text = text.strip()
    if len(text) > MAX_REASON_CHARS:
        raise errors.InvalidInput(
            f"must be at most {MAX_REASON_CHARS} characters (got {len(text)})", field
        )
    if "\x00" in text or not _encodes(text):
        raise errors.InvalidInput("must not contain NUL characters or lone surrogates", field)
    return text


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
