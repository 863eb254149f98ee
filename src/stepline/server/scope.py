"""What a token limited to some functions sees: their functions and runs, nothing else.

The runs and functions of other functions answer 404, as if they did not exist (a limited
token learns nothing of them); a listing across functions is narrowed to the token's one
function, or refused (403) when the token has several and the request names none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from stepline import errors
from stepline.engine.access import Principal
from stepline.engine.operations import Operations
from stepline.store.base import FunctionRecord, RunRecord

_Item = TypeVar("_Item", RunRecord, FunctionRecord)


def limited_to(principal: Principal) -> str:
    """The functions a limited token may see, for messages."""
    return ", ".join(sorted(principal.functions or ()))


def check_function(principal: Principal, function_id: str) -> None:
    """`NotFound` for a function the principal may not see."""
    if not principal.sees(function_id):
        raise errors.NotFound(f"unknown function {function_id!r}")


def visible_run(ops: Operations, principal: Principal, run_id: str) -> RunRecord:
    """The run, if the principal may see it; `NotFound` otherwise (and for no such run)."""
    run = ops.store.get_run(run_id)
    if not principal.sees(run.function_id):
        raise errors.NotFound(f"no run with id {run_id!r}")
    return run


def listed_function(principal: Principal, function_id: str | None) -> str | None:
    """The function a listing of runs is narrowed to, for this principal.

    Raises:
        NotFound: The function asked for is not one the token may see.
        Forbidden: The token is limited to several functions and the request names none.
    """
    if principal.functions is None:
        return function_id
    if function_id is not None:
        check_function(principal, function_id)
        return function_id
    if len(principal.functions) == 1:
        return next(iter(principal.functions))
    raise errors.Forbidden(
        f"the token {principal.name!r} is limited to functions {limited_to(principal)}; "
        "give function_id"
    )


def visible(principal: Principal, items: Iterable[_Item]) -> list[_Item]:
    """The runs or functions the principal may see, in order."""
    if principal.functions is None:
        return list(items)
    return [item for item in items if principal.sees(_function_of(item))]


def _function_of(item: RunRecord | FunctionRecord) -> str:
    return item.function_id if isinstance(item, RunRecord) else item.id
