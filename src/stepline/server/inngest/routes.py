"""The routes of the SDK-facing endpoints, each behind `check_sdk_auth`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from stepline.engine.operations import Operations
from stepline.server.auth import AuthSettings, check_token
from stepline.server.inngest.discovery import connect_start, dev_info_endpoint
from stepline.server.inngest.gql import graphql_endpoint
from stepline.server.inngest.large_state import LargeState

Handler = Callable[[Request], Awaitable[Response]]


def check_sdk_auth(auth: AuthSettings, request: Request) -> None:
    """Raise `Unauthorized` unless the request may read runs (open servers let everyone).

    Accepts `Authorization: Bearer <API token>`. The SDKs send the hash of their signing key
    instead (protocol §4.4): its check (`SigningKeys.accepts_bearer`) belongs here.

    Raises:
        Unauthorized: No token, or a wrong one.
        TooManyFailures: This client presented too many wrong tokens lately.
    """
    check_token(auth, request)


def _guarded(auth: AuthSettings, handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        check_sdk_auth(auth, request)
        return await handler(request)

    return endpoint


def inngest_routes(operations: Operations, auth: AuthSettings) -> list[Route]:
    """`POST /v0/gql`, `GET /v0/runs/{run_id}/batch` and `/actions`, readiness and `GET /dev`."""
    state = LargeState(operations)
    handlers: list[tuple[str, str, Handler]] = [
        ("POST", "/v0/gql", graphql_endpoint(operations)),
        ("GET", "/v0/runs/{run_id}/batch", state.batch),
        ("GET", "/v0/runs/{run_id}/actions", state.actions),
        ("POST", "/v0/connect/start", connect_start),
        ("GET", "/dev", dev_info_endpoint(operations, auth)),
    ]
    return [Route(path, _guarded(auth, h), methods=[method]) for method, path, h in handlers]
