"""CEL expressions: compiled once, evaluated over events; a failed evaluation means "no match"."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from stepline import errors
from stepline._cel_result import non_boolean_reason, unknown_variables
from stepline._checks import is_text

log = logging.getLogger("stepline.cel")


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


def compile_condition(source: str, *, field: str = "if") -> Any:
    """Compile a CEL condition: like `compile_expression`, and it must be able to yield a bool."""
    program = compile_expression(source, field=field)
    reason = non_boolean_reason(source)
    if reason is not None:
        raise errors.InvalidInput(
            f"CEL condition {source!r} can never be true or false: {reason}; "
            "write a comparison such as event.data.total > 100",
            field,
        )
    return program


def check_variables(source: str, known: tuple[str, ...], *, field: str) -> None:
    """Raise `InvalidInput` naming `field` if `source` uses a variable other than `known`."""
    unknown = unknown_variables(source, known)
    if unknown:
        names = " and ".join(repr(name) for name in known)
        raise errors.InvalidInput(
            f"CEL expression {source!r} uses {unknown[0]!r}, which is not defined: it can use "
            f"{names} (e.g. event.data.customer)",
            field,
        )


class FailureLog:
    """Logs each failing condition once: per place, expression and kind of error, not per event.

    Bounded, so a flood of distinct failures cannot grow memory (it then starts afresh).
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._seen: set[tuple[str, str, str]] = set()
        self._capacity = capacity

    def report(self, where: str, source: str, exc: BaseException) -> None:
        """Log `exc` from evaluating `source` at `where`, unless it was logged already."""
        key = (where, source, type(exc).__name__)
        if key in self._seen:
            return
        if len(self._seen) >= self._capacity:
            self._seen.clear()
        self._seen.add(key)
        log.warning(
            "%s: CEL condition %r failed (%s: %s); treated as no match",
            where,
            source,
            type(exc).__name__,
            exc,
        )


def matches(source: str, variables: dict[str, Any], *, where: str, failures: FailureLog) -> bool:
    """True if the condition evaluates to true.

    Anything else is no match: false, a value that is not a boolean, a missing field, or an
    evaluation error such as a division by zero or an overflow. An error is reported to
    `failures` with `where` (e.g. "function 'f' trigger 'x'"); it never propagates.
    """
    try:
        return compile_expression(source).execute(variables) is True
    except KeyError:
        return False  # a missing field: the documented "no match", not worth a log line
    except BaseException as exc:  # the library's Rust panics derive from BaseException
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        failures.report(where, source, exc)
        return False
