"""A risky action's confirmation in the dashboard: the confirmed flag and the optional reason.

A confirmation form (cancel a run, bulk cancel or replay, pause or resume) posts
`confirmed=true`; a post without it does nothing but ask. Its reason box is free text, kept with
what the action touched; one too long is refused with the text kept (`engine.reasons`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from stepline import errors
from stepline.engine.reasons import MAX_REASON_CHARS, given_reason

CONFIRMED = "confirmed"


@dataclass(frozen=True, kw_only=True, slots=True)
class ReasonField:
    """The reason box: the text as typed, where it is kept (`hint`), why it was refused."""

    hint: str
    value: str = ""
    error: str | None = None
    max_chars: int = MAX_REASON_CHARS

    @property
    def given(self) -> str | None:
        """The reason as stored (None: none given); only for a field without `error`."""
        return given_reason(self.value)


def confirmed(form: Mapping[str, str]) -> bool:
    """Whether the post came from a confirmation form."""
    return form.get(CONFIRMED) == "true"


def reason_field(form: Mapping[str, str], hint: str) -> ReasonField:
    """The posted reason box, with the error if the reason is refused."""
    typed = form.get("reason", "")
    try:
        given_reason(typed)
    except errors.InvalidInput as exc:
        return ReasonField(hint=hint, value=typed, error=str(exc))
    return ReasonField(hint=hint, value=typed)
