"""Read what people type: `--key=value` flags and `--data` JSON as data, `--since` spans."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import click

from stepline import errors
from stepline._durations import parse_duration

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def parse_json_object(text: str, field: str) -> dict[str, Any]:
    """`text` as a JSON object.

    Raises:
        InvalidInput: `text` is not JSON, or not an object; the message names `field`.
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise errors.InvalidInput(f"not valid JSON ({detail}): {text!r}", field) from exc
    if not isinstance(value, dict):
        raise errors.InvalidInput(f'must be a JSON object like {{"key": 1}}, not {text!r}', field)
    return value


def flag_value(text: str, flag: str) -> Any:
    """A flag's value, typed the way a person typing it means it.

    true/false (any case) become bools; JSON numbers, arrays, objects, "strings" and null are
    decoded; anything else is the string itself (so "abc" is "abc" and "007" stays "007").

    Raises:
        InvalidInput: The value opens like a JSON array or object but is not valid JSON.
    """
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except ValueError as exc:
        if text.lstrip().startswith(("[", "{")):
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise errors.InvalidInput(
                f"not valid JSON ({detail}): {text!r}; for a string, quote it as JSON: "
                f"{flag}='\"...\"'",
                flag,
            ) from exc
        return text


def _key(name: str, flag: str) -> str:
    if not _KEY.match(name):
        raise errors.InvalidInput(
            "flags look like --key=value, with a key of letters, digits, '_', '-' or '.'",
            flag,
        )
    return name.replace("-", "_")


def parse_flags(args: Sequence[str]) -> dict[str, Any]:
    """Event data from free flags.

    `--limit=10` (or `--limit 10`) → {"limit": 10}, `--dry-run=true` → {"dry_run": True}.
    Dashes in keys become underscores; a later flag wins. A flag without a value is refused
    rather than guessed at (`--per-page` alone is more likely a forgotten value than true).

    Raises:
        InvalidInput: An argument is not a `--` flag, a flag has no value, or its key is
            malformed.
    """
    data: dict[str, Any] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("--") or arg == "--":
            raise errors.InvalidInput(
                "expected a flag like --key=value after the event name or function id", repr(arg)
            )
        name, equals, value = arg[2:].partition("=")
        key = _key(name, arg.partition("=")[0])
        if equals:
            data[key] = flag_value(value, f"--{name}")
        elif rest and not rest[0].startswith("--"):
            data[key] = flag_value(rest.pop(0), arg)
        else:
            raise errors.InvalidInput(
                f"no value; give one as {arg}=VALUE (for a boolean, {arg}=true or {arg}=false)",
                arg,
            )
    return data


def since(text: str | None) -> datetime | None:
    """The moment `text` ("2h", "30m", "1d") ago; None for None.

    Raises:
        click.BadParameter: `text` is not a duration; the message names --since.
    """
    if text is None:
        return None
    try:
        return datetime.now(UTC) - parse_duration(text, field="--since")
    except errors.InvalidInput as exc:
        raise click.BadParameter(exc.reason, param_hint="--since") from None
