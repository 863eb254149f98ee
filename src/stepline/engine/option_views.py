"""A function's flow-control options as stored, and one line of text per option for people.

The API, the dashboard and the CLI show the same lines, e.g. "throttle 10 per 1m (burst 1)"
or "cancel on sync/cancelled if event.data.id == async.data.id (1d)".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stepline._durations import period_text

LABELS = {
    "concurrency": "concurrency",
    "throttle": "throttle",
    "rate_limit": "rate limit",
    "debounce": "debounce",
    "priority": "priority",
    "batch_events": "batch",
    "idempotency": "idempotency",
    "singleton": "singleton",
    "cancel_on": "cancel on",
    "start_timeout_seconds": "start within",
    "on_failure": "on failure",
}
"""The registry config's option keys, in the order they are shown, with their labels."""
IDEMPOTENCY_PERIOD = "24h"
"""How long an idempotency key holds: Inngest's fixed 24 hours."""


@dataclass(frozen=True, slots=True)
class OptionLine:
    """One option in words: its label ("rate limit") then `detail` ("1 per 1h").

    `key` is the option's key in the registry config ("rate_limit").
    """

    key: str
    detail: str

    @property
    def label(self) -> str:
        """What the option is called in words."""
        return LABELS[self.key]

    @property
    def text(self) -> str:
        """The whole line: "rate limit 1 per 1h", "on failure: report-failure"."""
        separator = ": " if self.key in _NAMING else " "
        return f"{self.label}{separator}{self.detail}"


def options_view(config: Mapping[str, Any]) -> dict[str, Any]:
    """The options a function sets, in their stored shapes (unset ones left out)."""
    return {key: config[key] for key in LABELS if config.get(key) is not None}


def _per(option: Mapping[str, Any]) -> str:
    return f" per {option['key']}" if option.get("key") else ""


def _lasting(seconds: float | None, prefix: str = "") -> str:
    return f" ({prefix}{period_text(seconds)})" if seconds else ""


def _concurrency(limit: Mapping[str, Any]) -> str:
    shared = " across functions" if limit.get("scope") == "all" else ""
    return f"{limit['limit']}{_per(limit)}{shared}"


def _throttle(throttle: Mapping[str, Any]) -> str:
    period = period_text(throttle["period_seconds"])
    return f"{throttle['limit']} per {period}{_per(throttle)} (burst {throttle.get('burst', 1)})"


def _rate_limit(rate: Mapping[str, Any]) -> str:
    return f"{rate['limit']} per {period_text(rate['period_seconds'])}{_per(rate)}"


def _debounce(debounce: Mapping[str, Any]) -> str:
    longest = _lasting(debounce.get("timeout_seconds"), "max ")
    return f"{period_text(debounce['period_seconds'])}{_per(debounce)}{longest}"


def _batch(batch: Mapping[str, Any]) -> str:
    wait = period_text(batch["timeout_seconds"])
    return f"up to {batch['max_size']} events or {wait}{_per(batch)}"


def _cancel_on(cancel: Mapping[str, Any]) -> str:
    condition = f" if {cancel['if']}" if cancel.get("if") else ""
    return f"{cancel['event']}{condition}{_lasting(cancel.get('timeout_seconds'))}"


_DETAILS: dict[str, Callable[[Any], str]] = {
    "concurrency": _concurrency,
    "throttle": _throttle,
    "rate_limit": _rate_limit,
    "debounce": _debounce,
    "priority": lambda priority: str(priority["run"]),
    "batch_events": _batch,
    "idempotency": lambda key: f"{key} ({IDEMPOTENCY_PERIOD})",
    "singleton": lambda singleton: f"{singleton['mode']}{_per(singleton)}",
    "cancel_on": _cancel_on,
    "start_timeout_seconds": period_text,
    "on_failure": str,
}
_LISTS = frozenset({"concurrency", "cancel_on"})
_NAMING = frozenset({"singleton", "on_failure"})
"""Options whose detail names a mode or a function: "singleton: skip", "on failure: f-failure"."""


def option_lines(config: Mapping[str, Any]) -> list[OptionLine]:
    """Each option set in a function's stored config as a line, in `LABELS` order."""
    return [
        OptionLine(key, _DETAILS[key](item))
        for key, value in options_view(config).items()
        for item in (value if key in _LISTS else [value])
    ]


def option_summaries(config: Mapping[str, Any]) -> list[str]:
    """Each option set in a function's stored config as one line of text."""
    return [line.text for line in option_lines(config)]
