"""CEL expressions: compiled once, evaluated over events; a missing field means "no match"."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from stepline import errors
from stepline._checks import is_text


@lru_cache(maxsize=1024)
def compile_expression(source: str, *, field: str = "if") -> Any:
    """Compile a CEL expression, raising `InvalidInput` that names `field` if it is invalid."""
    if not is_text(source):
        raise errors.InvalidInput("expected a non-empty CEL expression", field)
    import cel  # imported on first use: it takes 0.1 s, and most apps need none

    try:
        return cel.compile(source)
    except (ValueError, RuntimeError) as exc:
        first_line = str(exc).splitlines()[0]
        raise errors.InvalidInput(
            f"invalid CEL expression {source!r}: {first_line}", field
        ) from None


def matches(source: str, variables: dict[str, Any]) -> bool:
    """True if the expression evaluates to true; missing fields and type errors are false."""
    program = compile_expression(source)
    try:
        return program.execute(variables) is True
    except (KeyError, TypeError, ValueError, RuntimeError):
        return False
