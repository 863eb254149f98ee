"""`POST /v0/gql`: the GraphQL subset inngest-py's test helper reads runs with (protocol §12).

The schema holds what the helper's four documents select, named and typed as in the Inngest
server's schema: a run's status and output, its step spans (`run.trace.childrenSpans`), a span's
output by its `outputID`, the run's trigger events (`runTrigger.payloads`) and the runs of an
event. Outputs and payloads are JSON text (the `Bytes` scalar). An unknown run or event is a
GraphQL error, never a null answer. Documents that do not parse or validate get GraphQL errors
with status 200; a body that is not a JSON request object gets 400.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    build_schema,
    graphql,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from stepline import errors
from stepline.engine.inngest.memo import sdk_error
from stepline.engine.operations import Operations
from stepline.engine.outputs import Outputs
from stepline.server.body import read_json
from stepline.server.errors import INTERNAL, public_error
from stepline.server.inngest.reads import parse_run_id, run_steps, sdk_events
from stepline.store.base import RunRecord, StepRecord, Store

logger = logging.getLogger("stepline.server")
T = TypeVar("T")

MAX_REQUEST_BYTES = 64 * 1024
_BOOKKEEPING = ("parallel", "branch")  # in-process step kinds that are no step of their own
_FINISHED = ("completed", "failed")
_RUN_OUTPUTS = ("COMPLETED", "FAILED")  # a run's output is its result or its error

SDL = """
scalar Bytes

enum FunctionRunStatus { QUEUED RUNNING COMPLETED FAILED CANCELLED SKIPPED }

type Query {
  run(runID: String!): FunctionRunV2
  runTrigger(runID: String!): RunTraceTrigger!
  runTraceSpanOutputByID(outputID: String!): RunTraceSpanOutput!
  event(query: EventQuery!): Event
}

input EventQuery { eventId: ID! }

type FunctionRunV2 { status: FunctionRunStatus!, output: Bytes, trace: RunTraceSpan }

type RunTraceSpan { name: String!, outputID: String, childrenSpans: [RunTraceSpan!]! }

type RunTraceSpanOutput { data: Bytes, error: StepError }

type StepError { message: String!, name: String, stack: String }

type RunTraceTrigger { payloads: [Bytes!]! }

type Event { functionRuns: [FunctionRun!] }

type FunctionRun { id: ID! }
"""


# -- output ids: "<run id>" for the run's own output, "<run id>:<step hash>" for a step's ----


def _output_id(run: RunRecord, step: StepRecord | None = None) -> str | None:
    """The id of the run's (or the step's) output; None until it has one."""
    if step is None:
        return run.id if run.status in _RUN_OUTPUTS else None
    return f"{run.id}:{step.hash}" if step.status in _FINISHED else None


def _trace(run: RunRecord, steps: list[StepRecord]) -> dict[str, Any]:
    """The run's span, its steps' spans as children in the order the run reached them."""
    spans: list[dict[str, Any]] = [
        {"name": step.id, "outputID": _output_id(run, step), "childrenSpans": []}
        for step in steps
        if step.kind not in _BOOKKEEPING
    ]
    return {"name": run.function_id, "outputID": _output_id(run), "childrenSpans": spans}


def _result(store: Store, failed: bool, output: str | None, error: str | None) -> dict[str, Any]:
    """A span output: the JSON text of a result (a blob's, read), or an error."""
    if failed:
        return {"data": None, "error": sdk_error(error)}
    return {"data": Outputs(store).text(output), "error": None}


def _span_output(store: Store, output_id: str) -> dict[str, Any]:
    """The output `output_id` names; `NotFound` if it names none."""
    run_part, _, step_hash = output_id.partition(":")
    run = store.get_run(parse_run_id(run_part, "outputID"))
    missing = errors.NotFound(f"no output {output_id!r}")
    if not step_hash:
        if _output_id(run) is None:
            raise missing
        return _result(store, run.status == "FAILED", run.output, run.error)
    step = next((s for s in run_steps(store, run) if s.hash == step_hash), None)
    if step is None or _output_id(run, step) is None:
        raise missing
    return _result(store, step.status == "failed", step.output, step.error)


# -- resolvers ------------------------------------------------------------------------------


async def _read(info: GraphQLResolveInfo[Operations], read: Callable[[Store], T]) -> T:
    """`read(store)` in the thread pool (the store blocks)."""
    return await run_in_threadpool(read, info.context.store)


async def _run(_: None, info: GraphQLResolveInfo[Operations], **args: Any) -> RunRecord:
    run_id = parse_run_id(args["runID"], "runID")
    return await _read(info, lambda store: store.get_run(run_id))


async def _run_output(run: RunRecord, info: GraphQLResolveInfo[Operations]) -> str | None:
    if run.status == "FAILED":
        return run.error
    return await _read(info, lambda store: Outputs(store).text(run.output))


async def _run_trace(run: RunRecord, info: GraphQLResolveInfo[Operations]) -> dict[str, Any]:
    return _trace(run, await _read(info, lambda store: run_steps(store, run)))


async def _run_trigger(
    _: None, info: GraphQLResolveInfo[Operations], **args: Any
) -> dict[str, Any]:
    run_id = parse_run_id(args["runID"], "runID")
    events = await _read(info, lambda store: sdk_events(store, store.get_run(run_id)))
    return {"payloads": [json.dumps(event, ensure_ascii=False) for event in events]}


async def _output(_: None, info: GraphQLResolveInfo[Operations], **args: Any) -> dict[str, Any]:
    return await _read(info, lambda store: _span_output(store, args["outputID"]))


async def _event(_: None, info: GraphQLResolveInfo[Operations], **args: Any) -> dict[str, Any]:
    """The runs the event started; parallel branches are parts of a run, not runs of their own."""
    runs = await run_in_threadpool(info.context.runs_for_event, args["query"]["eventId"])
    return {"functionRuns": [run for run in runs if run.trigger_kind != "parallel"]}


_RESOLVERS: dict[tuple[str, str], Callable[..., Any]] = {
    ("Query", "run"): _run,
    ("Query", "runTrigger"): _run_trigger,
    ("Query", "runTraceSpanOutputByID"): _output,
    ("Query", "event"): _event,
    ("FunctionRunV2", "output"): _run_output,
    ("FunctionRunV2", "trace"): _run_trace,
}


def _schema() -> GraphQLSchema:
    """`SDL` with `_RESOLVERS`; other fields read the attribute or key of their name."""
    schema = build_schema(SDL)
    for (type_name, field_name), resolve in _RESOLVERS.items():
        owner = schema.type_map[type_name]
        assert isinstance(owner, GraphQLObjectType)
        owner.fields[field_name].resolve = resolve
    return schema


SCHEMA = _schema()


# -- HTTP -----------------------------------------------------------------------------------


def _request(body: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    """`(query, variables, operationName)` of a GraphQL-over-HTTP request body.

    Raises:
        InvalidInput: Not an object with a string `query`, an object (or null) `variables` and
            a string (or null) `operationName`.
    """
    if not isinstance(body, dict):
        raise errors.InvalidInput("must be a JSON object with a 'query'", "body")
    query, variables, operation = (body.get(k) for k in ("query", "variables", "operationName"))
    if not isinstance(query, str):
        raise errors.InvalidInput("must be a string (a GraphQL document)", "query")
    if variables is not None and not isinstance(variables, dict):
        raise errors.InvalidInput("must be a JSON object or null", "variables")
    if operation is not None and not isinstance(operation, str):
        raise errors.InvalidInput("must be a string or null", "operationName")
    return query, variables, operation


def _public(error: GraphQLError) -> dict[str, Any]:
    """An error as the client sees it: a resolver's failure by `public_error`'s rules."""
    formatted: dict[str, Any] = dict(error.formatted)
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return formatted
    if isinstance(original, errors.SteplineError):
        formatted["message"] = public_error(original)[1]
    else:
        logger.error("GraphQL resolver failed: %s", original, exc_info=original)
        formatted["message"] = INTERNAL
    return formatted


def _answer(result: ExecutionResult) -> dict[str, Any]:
    answer: dict[str, Any] = {"data": result.data}
    if result.errors:
        answer["errors"] = [_public(error) for error in result.errors]
    return answer


def graphql_endpoint(operations: Operations) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The handler for `POST /v0/gql`: `{"data": ..., "errors": [...]}`, as GraphQL servers do."""

    async def execute(request: Request) -> JSONResponse:
        body = await read_json(request, limit=MAX_REQUEST_BYTES)
        query, variables, operation = _request(body)
        result = await graphql(
            SCHEMA,
            query,
            variable_values=variables,
            operation_name=operation,
            context_value=operations,
        )
        return JSONResponse(_answer(result))

    return execute
