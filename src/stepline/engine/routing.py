"""Which functions an event starts, and whether it satisfies a wait: asked by the store."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from stepline._cel import FailureLog, matches
from stepline.engine.events import new_id
from stepline.store.base import EventRecord, FunctionRecord, NewRun, WaitRecord


@lru_cache(maxsize=512)
def _config(config: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(config)
    return parsed


def name_matches(pattern: str, name: str) -> bool:
    """Exact match, or a trailing "/*" or ".*" wildcard matching everything under a prefix."""
    if pattern.endswith(("/*", ".*")):
        return name.startswith(pattern[:-1])
    return pattern == name


class Routing:
    """The engine's answers to `EventRouting`, built from the stored function registry."""

    def __init__(self) -> None:
        self.failures = FailureLog()

    def runs_for(self, event: EventRecord, functions: Sequence[FunctionRecord]) -> list[NewRun]:
        """One run per function with a matching event trigger (once, however many match)."""
        runs: list[NewRun] = []
        payload: dict[str, Any] | None = None
        for fn in functions:
            config = _config(fn.config)
            for trigger in config["triggers"]:
                pattern = trigger.get("event")
                if pattern is None or not name_matches(pattern, event.name):
                    continue
                condition = trigger.get("if")
                if condition:
                    payload = payload or event.payload()
                    where = f"function {fn.id!r} trigger {pattern!r}"
                    if not matches(
                        condition, {"event": payload}, where=where, failures=self.failures
                    ):
                        continue
                runs.append(
                    NewRun(
                        id=new_id(),
                        function_id=fn.id,
                        trigger_kind="event",
                        event_ids=(event.internal_id,),
                        timeout_seconds=config.get("timeout_seconds"),
                    )
                )
                break
        return runs

    def wait_matches(
        self, wait: WaitRecord, event: EventRecord, trigger: EventRecord | None
    ) -> bool:
        """True if `event` satisfies the wait's CEL condition (`event` = trigger, `async`)."""
        if not wait.expression:
            return True
        variables = {
            "event": trigger.payload() if trigger else {},
            "async": event.payload(),
        }
        where = f"run {wait.run_id} wait_for_event({wait.event_name!r})"
        return matches(wait.expression, variables, where=where, failures=self.failures)
