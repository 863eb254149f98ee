"""What a rerun reuses: the finished steps of the original run before the one it starts from."""

from __future__ import annotations

from collections.abc import Sequence

from stepline import errors
from stepline.store.base import StepRecord

_SHOWN_IDS = 10  # step ids named in a rerun's log line or an error, at most


def reused_steps(steps: Sequence[StepRecord], from_step: str | None) -> list[StepRecord]:
    """The steps of one run that a rerun from `from_step` keeps (None: none, from the start).

    Kept are the finished (completed or failed) steps placed before `from_step` in the
    function. A step of a parallel group, or a branch of one, reruns the whole group.

    Raises:
        InvalidInput: `from_step` is not a step of the run (the run's steps are named).
    """
    if from_step is None:
        return []
    chosen = next((step for step in steps if step.id == from_step), None)
    if chosen is None:
        raise errors.InvalidInput(
            f"no step {from_step!r} in the run; {_steps_text(steps)}", "from_step"
        )
    start = min(
        [chosen.position]
        + [
            group.position
            for group in steps
            if group.kind == "parallel"
            and (chosen.id == group.id or chosen.id.startswith(f"{group.id}["))
        ]
    )
    return [s for s in steps if s.position < start and s.status in ("completed", "failed")]


def rerun_note(
    original_id: str, from_step: str | None, reused: Sequence[StepRecord], *, edited: bool
) -> str:
    """The line a rerun's log starts with: what it reuses and where it starts."""
    start = f"from step {from_step!r}" if from_step is not None else "from the start"
    text = f"Rerun of run {original_id} {start}"
    if reused:
        text += f"; reused {len(reused)} earlier step(s): {_ids(reused)}"
    return text + ("; event data edited" if edited else "")


def _steps_text(steps: Sequence[StepRecord]) -> str:
    return f"its steps: {_ids(steps)}" if steps else "it has no steps"


def _ids(steps: Sequence[StepRecord]) -> str:
    ids = ", ".join(repr(step.id) for step in steps[:_SHOWN_IDS])
    more = len(steps) - _SHOWN_IDS
    return f"{ids} and {more} more" if more > 0 else ids
