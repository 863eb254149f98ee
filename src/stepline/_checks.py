"""Runtime checks of values that typed callers get right but untyped callers may not."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


def is_text(value: object, pattern: re.Pattern[str] | None = None) -> bool:
    """A non-blank string (matching `pattern`, when given)."""
    if not isinstance(value, str) or not value.strip():
        return False
    return pattern is None or pattern.match(value) is not None


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _children(node: dict[Any, Any] | list[Any]) -> Iterable[Any]:
    return node.values() if isinstance(node, dict) else node


def too_deep(value: object, limit: int) -> list[str | int] | None:
    """The path to an array or object nested deeper than `limit` levels, else None.

    The top-level value is level 1. Walks level by level without recursion, so any depth is
    safe to check.
    """
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(limit):
        level = [c for n in level for c in _children(n) if isinstance(c, dict | list)]
    return _path_deeper_than(value, limit) if level else None


def _path_deeper_than(value: Any, limit: int) -> list[str | int]:
    """The path to a container below `limit` levels (there is one; slower than the check)."""
    stack: list[tuple[Any, list[str | int]]] = [(value, [])]
    while stack:
        node, path = stack.pop()
        if len(path) >= limit:
            return path
        items: Iterable[tuple[str | int, Any]]
        items = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend(
            (child, [*path, key]) for key, child in items if isinstance(child, dict | list)
        )
    raise AssertionError("no container below the limit")
