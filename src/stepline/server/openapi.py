"""The OpenAPI 3.1 document, built from the route table and the pydantic models.

`server/app.py` lists each API route once, as an `Endpoint` naming its handler and models;
the same list registers the routes and builds this document, so the two cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

from stepline.engine.access import Role
from stepline.server import models

REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")
INNGEST_SHAPE = (
    "Inngest's REST API has this route too. The bearer token may be the API token or a signing "
    "key. A request from an Inngest client (`X-Inngest-SDK`, a `User-Agent` starting "
    "`inngest-`, a `signkey-...` bearer token or the hash of a signing key the server has) or "
    "with `X-Stepline-Shape: inngest` gets Inngest's answer: the `Inngest...` schema, or for a "
    "cancel a 200 with an empty body; `X-Stepline-Shape: stepline` asks for Stepline's."
)
ERROR_WHEN = {
    400: "Bad input; `field` names it",
    401: "Missing, wrong or revoked bearer token (only when the server has tokens)",
    403: "The token's role (or its limit to some functions) does not allow this",
    404: "No such run, event or function (or no run the `before` cursor names)",
    409: "Conflicts with the current state (e.g. the function is paused)",
    413: "Request body or event too large",
    429: "Too many wrong API tokens from this address lately; see `Retry-After`",
    502: "The app could not be reached or refused; `error` says why",
    503: "The database is unreachable; try again",
}

DOWNLOAD_HEADERS = {
    "Content-Length": {
        "description": "Bytes of JSON",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "Content-Disposition": {
        "description": 'attachment; filename="<run id>-...-output.json"',
        "schema": {"type": "string"},
    },
}


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """One API route: what it accepts and answers, and which `Api` method handles it.

    Attributes:
        method: The HTTP method.
        path: Starlette path; `{name}` segments are string path parameters.
        handler: The name of the `Api` method serving it.
        summary: One line for the document.
        tag: The group it is listed under.
        response: The model of a success (None: `stream` or free-form JSON).
        status: The success status.
        query: The query-string model (parsed before the handler runs).
        body: The request-body model (parsed before the handler runs, unless `raw_body`).
        body_required: Whether an empty body is refused.
        raw_body: The handler validates the body itself (event intake's own field names).
        errors: Error statuses besides 400, 503 and, with `auth`, 401, 403 and 429.
        stream: Answers with server-sent events instead of JSON.
        download: Answers with a file of JSON (any JSON value), not `{"data": ...}`.
        auth: Needs an API token (when the server has tokens); False for public routes.
        role: The role the token needs: read, operate or admin (see `server.auth`).
        per_function: It answers a token limited to some functions with theirs only (see
            `server.scope`); other routes refuse such a token (403).
        plain: The handler takes the `Request` and does all the above itself (event intake).
        error_model: The body of its 4xx answers.
        inngest: Inngest's REST API has this route too: it takes a signing key as well as the
            API token, answers Inngest clients in Inngest's shape, and its handler takes
            `inngest` (see `server.inngest.rest`).
        inngest_response: The model of that shape (None: an empty body).
        previews: It takes `{"preview": true}` and then answers 200, touching nothing.
    """

    method: str
    path: str
    handler: str
    summary: str
    tag: str
    response: type[BaseModel] | None = None
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    raw_body: bool = False
    errors: tuple[int, ...] = ()
    stream: bool = False
    download: bool = False
    previews: bool = False
    auth: bool = True
    role: Role = "read"
    per_function: bool = False
    plain: bool = False
    error_model: type[BaseModel] = models.Error
    inngest: bool = False
    inngest_response: type[BaseModel] | None = None

    @property
    def path_params(self) -> list[str]:
        """The names of the `{...}` segments."""
        return _PATH_PARAM.findall(self.path)

    @property
    def error_statuses(self) -> list[int]:
        """Every error status this route may answer."""
        common = {400, 503} | ({401, 403, 429} if self.auth else set())
        return sorted(common | set(self.errors))


def _strip_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A request field's schema without the `null` branch pydantic adds for `X | None = None`.

    Absent means "any"; an explicit null in a query string or body is not part of the API.
    """
    schema = {k: v for k, v in schema.items() if not (k == "default" and v is None)}
    branches = schema.get("anyOf")
    if branches is not None:
        kept = [b for b in branches if b != {"type": "null"}]
        schema.pop("anyOf")
        if len(kept) == 1:
            schema = {**kept[0], **schema}
        else:
            schema["anyOf"] = kept
    return schema


class _Components:
    """Collects model schemas into `components.schemas`."""

    def __init__(self) -> None:
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel], *, request: bool = False) -> dict[str, Any]:
        """Register `model` (and the models it uses) and return a `$ref` to it."""
        if model.__name__ not in self.schemas:
            self.schemas[model.__name__] = self.schema(model, request=request)
        return {"$ref": REF.format(model=model.__name__)}

    def schema(self, model: type[BaseModel], *, request: bool = False) -> dict[str, Any]:
        """The model's own schema; its nested models go to the components."""
        schema = model.model_json_schema(ref_template=REF)
        for name, nested in schema.pop("$defs", {}).items():
            self.schemas.setdefault(name, nested)
        if request and "properties" in schema:
            schema["properties"] = {
                name: _strip_null(prop) for name, prop in schema["properties"].items()
            }
        return schema


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _parameters(endpoint: Endpoint, components: _Components) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": models.NO_NUL},
        }
        for name in endpoint.path_params
    ]
    if endpoint.query is not None:
        schema = components.schema(endpoint.query, request=True)
        required = set(schema.get("required", []))
        for name, prop in schema["properties"].items():
            parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
            if "description" in prop:
                parameter["description"] = prop.pop("description")
            prop.pop("title", None)
            parameters.append({**parameter, "schema": prop})
    return parameters


def _responses(endpoint: Endpoint, components: _Components) -> dict[str, Any]:
    success: dict[str, Any] = {"description": HTTPStatus(endpoint.status).phrase}
    if endpoint.stream:
        success["description"] = "Server-sent events"
        success["content"] = {"text/event-stream": {"schema": {"type": "string"}}}
    elif endpoint.download:
        success["description"] = "The JSON, as a file (`Content-Disposition: attachment`)"
        success["content"] = _json({})
        success["headers"] = DOWNLOAD_HEADERS
    elif endpoint.response is not None and endpoint.inngest_response is not None:
        shapes = [components.ref(endpoint.response), components.ref(endpoint.inngest_response)]
        success["content"] = _json({"oneOf": shapes})
    elif endpoint.response is not None:
        success["content"] = _json(components.ref(endpoint.response))
    else:
        success["content"] = _json({"type": "object"})
    responses = {str(endpoint.status): success}
    if endpoint.previews and endpoint.status != HTTPStatus.OK:
        responses["200"] = {**success, "description": "A preview: nothing was touched"}
    for status in endpoint.error_statuses:
        model = models.Error if status >= 500 else endpoint.error_model
        responses[str(status)] = {
            "description": ERROR_WHEN[status],
            "content": _json(components.ref(model)),
        }
    return responses


def _operation(endpoint: Endpoint, components: _Components) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.handler,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "parameters": _parameters(endpoint, components),
        "responses": _responses(endpoint, components),
    }
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": endpoint.body_required,
            "content": _json(components.ref(endpoint.body, request=True)),
        }
    if not endpoint.auth:
        operation["security"] = []
    else:
        operation["x-stepline-role"] = endpoint.role
    described = [f"Needs the `{endpoint.role}` role."] if endpoint.auth else []
    if endpoint.inngest:
        described.append(INNGEST_SHAPE)
    if described:
        operation["description"] = " ".join(described)
    return operation


def document(endpoints: Sequence[Endpoint], *, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `endpoints`."""
    components = _Components()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        operation = _operation(endpoint, components)
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Stepline REST API",
            "version": version,
            "description": (
                'Every success is `{"data": ...}` (lists add `next_cursor`); every error is '
                '`{"error": message, "status": code, "field": name?}`. Event intake at '
                "`/e/{event_key}` speaks Inngest's shape instead, and so do the routes Inngest's "
                "REST API shares with this one, to Inngest clients (see their descriptions)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.schemas.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
