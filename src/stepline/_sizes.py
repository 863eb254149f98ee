"""Byte counts in words ("256 KiB", "6.2 MiB") and from words ("256KiB", "64MiB", "1048576")."""

from __future__ import annotations

import re

from stepline import errors

_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}
_SIZE = re.compile(r"(\d+)\s*([a-z]*)")


def format_size(size: int) -> str:
    """A byte count in words: "900 bytes", "256 KiB", "6.2 MiB"."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            whole, rest = divmod(size, factor)
            return f"{whole} {unit}" if rest == 0 else f"{size / factor:.1f} {unit}"
    return f"{size} byte{'' if size == 1 else 's'}"


def parse_size(text: str, *, field: str = "size") -> int:
    """A byte count from "256KiB", "64 MiB", "1GiB" or a number of bytes.

    Raises:
        InvalidInput: The text is not a size, or is zero.
    """
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None or match[2] not in _UNITS or int(match[1]) == 0:
        raise errors.InvalidInput(
            f'{text!r} is not a size; write e.g. "256KiB", "64MiB" or a number of bytes', field
        )
    return int(match[1]) * _UNITS[match[2]]
