"""The routes of the SDK-facing endpoints, each behind `check_sdk_auth`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stepline import errors
from stepline.engine.inngest.sync import syncer_for
from stepline.engine.operations import Operations
from stepline.server.auth import AuthSettings, check_token
from stepline.server.inngest.discovery import connect_start, dev_info_endpoint
from stepline.server.inngest.large_state import LargeState
from stepline.server.inngest.register import register_endpoint

Handler = Callable[[Request], Awaitable[Response]]


def check_sdk_auth(auth: AuthSettings, request: Request) -> None:
    """Raise `Unauthorized` unless the request may call the SDK endpoints.

    SDK apps send the hash of their signing key as a bearer token (protocol §4.4); people and
    tools may send an `admin` API token. An open server (`stepline dev` without a signing key)
    accepts everyone: the SDKs in dev mode send junk such as `Bearer undefined`.

    Raises:
        Unauthorized: No token, or a wrong one.
        Forbidden: A token without the admin role.
        TooManyFailures: This client presented too many wrong tokens lately.
    """
    keys = auth.signing_keys
    if keys is not None and keys.accepts_bearer(request.headers.get("authorization")):
        return
    if keys is not None and auth.open:
        raise errors.Unauthorized("Authentication failed")
    check_token(auth, request, "admin")


def _guarded(auth: AuthSettings, handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        check_sdk_auth(auth, request)
        return await handler(request)

    return endpoint


def _graphql(operations: Operations) -> Handler:
    """`POST /v0/gql`, its GraphQL library imported on first use.

    Every `stepline` command imports the server's routes; graphql-core alone would add a sixth
    to their start-up time, for an endpoint only the SDKs' test tooling calls.
    """
    handler: Handler | None = None

    async def endpoint(request: Request) -> Response:
        nonlocal handler
        if handler is None:
            from stepline.server.inngest.gql import graphql_endpoint

            handler = graphql_endpoint(operations)
        return await handler(request)

    return endpoint


def inngest_routes(operations: Operations, auth: AuthSettings) -> list[Route]:
    """The SDK endpoints: sync, GraphQL, large state (`/v0/runs/...`), readiness, `/dev`."""
    state = LargeState(operations)
    syncer = syncer_for(operations, auth.signing_keys)
    handlers: list[tuple[str, str, Handler]] = [
        ("POST", "/fn/register", register_endpoint(syncer)),
        ("POST", "/v0/gql", _graphql(operations)),
        ("GET", "/v0/runs/{run_id}/batch", state.batch),
        ("GET", "/v0/runs/{run_id}/actions", state.actions),
        ("POST", "/v0/connect/start", connect_start),
        ("GET", "/dev", dev_info_endpoint(operations, auth)),
    ]
    return [Route(path, _guarded(auth, h), methods=[method]) for method, path, h in handlers]
