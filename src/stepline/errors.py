"""Every exception a Stepline user or operator can meet. Imports nothing from stepline."""

from __future__ import annotations

from datetime import datetime, timedelta


class SteplineError(Exception):
    """Base class of every Stepline error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


# -- raised by user code -------------------------------------------------------------------


class NonRetriableError(SteplineError):
    """Raise inside a function or step to fail it at once, without further attempts."""


class RetryAfterError(SteplineError):
    """Raise inside a function or step to retry it after a given delay instead of the backoff.

    Args:
        message: What went wrong.
        delay: A `timedelta`, a number of seconds, or an aware `datetime` to retry at.
    """

    def __init__(self, message: str, delay: timedelta | float | datetime) -> None:
        super().__init__(message)
        self.delay = delay


# -- seen by user code ---------------------------------------------------------------------


class StepError(SteplineError):
    """A step failed for good; raised where the function called it, on this and later replays.

    The original exception is carried as text (its type name, message and traceback), never
    as an unpickled object, so a replay on another worker raises the same error.
    """

    def __init__(self, step_id: str, name: str, message: str, traceback: str = "") -> None:
        super().__init__(f"step {step_id!r} failed: {name}: {message}")
        self.step_id = step_id
        self.name = name
        self.error_message = message
        self.traceback = traceback


class StepOutputError(NonRetriableError):
    """A step returned a value that cannot be stored as JSON."""


# -- configuration ---------------------------------------------------------------------------


class ConfigurationError(SteplineError):
    """A function, trigger or setting is invalid; raised when it is declared."""


class InvalidInput(SteplineError):
    """Input from outside (an event, a request, a flag) is invalid.

    Attributes:
        field: The name of the offending field, e.g. ``events[1].name``.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.reason = message


class PayloadTooLarge(InvalidInput):
    """A request body or event is larger than the configured limit."""


class NotFound(SteplineError):
    """A run, event or function with the given id does not exist."""


class Unauthorized(SteplineError):
    """The event key or API token is missing or wrong."""


class Forbidden(SteplineError):
    """The API token is right, but its role (or function limit) does not allow this."""


class ClientError(SteplineError):
    """The Stepline server could not be reached or answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# -- storage -----------------------------------------------------------------------------------


class StoreError(SteplineError):
    """The store could not complete an operation."""


class Conflict(StoreError):
    """A write collided with an existing row or a limit (a duplicate, a busy singleton key).

    Attributes:
        run_id: The run in the way, when there is one (e.g. the singleton's active run).
    """

    def __init__(self, message: str | None = None, run_id: str | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id


class LeaseLost(StoreError):
    """This worker no longer holds the run's lease (it expired, or the run was cancelled)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached; the operation may be retried."""


class SchemaOutOfDate(StoreError):
    """The database schema is older than this version of Stepline; run `stepline db upgrade`."""


class CommandFailed(SteplineError):
    """A `step.exec` command exited with a code outside `ok_codes`, or could not be started."""


class CommandTimedOut(CommandFailed):
    """A `step.exec` command ran past its step's `timeout` and was killed."""
