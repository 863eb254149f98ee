"""The HTTP driver: executes an SDK app's runs by calling its serve URL (protocol §7).

A claimed run is driven by a loop of call requests under its lease, like an in-process replay:
a step the app ran (`StepRun`) is committed and the next discovery request goes out at once;
the run parks only to wait — for a retry, a sleep, an event, an invoked run, or planned steps.
Planned steps of a parallel group become branch runs (any worker may call the app for them at
the same time); the parent is made due once nothing it waits for is left, and then asks the
app what comes next (the protocol's "coalesced" parallelism). What the app answers is turned
into store writes by `RunCall` (one claimed run).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from stepline import errors
from stepline.engine import tracing
from stepline.engine.clock import Clock
from stepline.engine.ending import LOST, Ending
from stepline.engine.inngest.call import DISCOVERY, USE_API_BYTES, Call, sdk_event
from stepline.engine.inngest.functions import SdkFunctions, SdkTarget
from stepline.engine.inngest.memo import memo
from stepline.engine.inngest.reply import BadReply, Reply, parse_reply
from stepline.engine.inngest.settling import Settler
from stepline.engine.inngest.signing import SigningKeys, canonical
from stepline.engine.inngest.writer import Writer
from stepline.engine.metrics import Metrics
from stepline.engine.outputs import OutputLimits, Outputs
from stepline.engine.retry import RetryPolicy
from stepline.engine.routing import Routing
from stepline.store.base import ClaimedRun, Store

logger = logging.getLogger("stepline.http")
USER_AGENT = "stepline"


@dataclass(frozen=True, kw_only=True)
class HttpSettings:
    """Limits of calls to SDK apps.

    Attributes:
        request_timeout_seconds: Longest wait for an app's answer to one call (a step may run
            that long); past it the attempt fails and is retried.
        connect_timeout_seconds: Longest wait to connect.
        max_response_bytes: Largest answer read; a larger one fails the attempt.
    """

    request_timeout_seconds: float = 600.0
    connect_timeout_seconds: float = 10.0
    max_response_bytes: int = 8 * 1024 * 1024


class TooLarge(BadReply):
    """The answer exceeded `max_response_bytes`."""


@dataclass(kw_only=True)
class HttpDriver:
    """Runs claimed runs of SDK functions (see the module docstring)."""

    store: Store
    clock: Clock
    routing: Routing
    functions: SdkFunctions
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rng: Callable[[], float] = random.random
    draining: threading.Event = field(default_factory=threading.Event)
    keys: SigningKeys | None = None
    settings: HttpSettings = field(default_factory=HttpSettings)
    metrics: Metrics | None = None
    output_limits: OutputLimits = field(default_factory=OutputLimits)
    _clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = field(default_factory=dict)
    _outputs: Outputs = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._outputs = Outputs(self.store, self.output_limits, self.clock)

    async def execute(
        self, claimed: ClaimedRun, lost: threading.Event | None = None
    ) -> Ending | None:
        """Drive one claimed run until it parks or ends (cancelled from outside if lost).

        Returns how it ended (None: parked or handed back), as `Executor.execute` does; a run
        that ended here has its trace's run span sent.
        """
        target = self.functions.known().get(claimed.run.function_id)
        writer = Writer(
            claimed=claimed,
            store=self.store,
            clock=self.clock,
            routing=self.routing,
            policy=self.policy,
            rng=self.rng,
            max_attempts=target.max_attempts if target else 1,
            config=target.config if target else "{}",
            metrics=self.metrics,
            outputs=self._outputs,
        )
        ending = await self._execute(claimed, target, writer, lost)
        tracing.run_ended(writer.trace, claimed.run, ending, self.clock.now())
        return ending

    async def _execute(
        self,
        claimed: ClaimedRun,
        target: SdkTarget | None,
        writer: Writer,
        lost: threading.Event | None,
    ) -> Ending | None:
        if target is None:
            message = f"function {claimed.run.function_id!r} is no longer registered"
            await asyncio.to_thread(writer.give_up, message)
            return writer.ending
        try:
            try:
                await self._drive(claimed, target, writer, lost)
            except errors.Conflict as exc:  # its stored state moved on (a child settled a step)
                logger.info("run %s: %s; claiming it afresh", claimed.run.id, exc)
                await asyncio.to_thread(writer.hand_back)
        except errors.LeaseLost as exc:  # the worker says why (a cancel, a takeover)
            logger.debug("run %s: %s", claimed.run.id, exc)
            return LOST
        except errors.StoreUnavailable as exc:
            logger.warning(
                "run %s: not saved (%s); replayed when its lease expires", claimed.run.id, exc
            )
        return writer.ending

    async def _drive(
        self,
        claimed: ClaimedRun,
        target: SdkTarget,
        writer: Writer,
        lost: threading.Event | None,
    ) -> None:
        settler = Settler(writer)
        if writer.branch is None and settler.pending():
            settled = await asyncio.to_thread(settler.settle_due)
            if not settled:
                return
        step_id: str | None = writer.branch or DISCOVERY
        while step_id is not None:
            if lost is not None and lost.is_set():
                return
            if self.draining.is_set():
                await asyncio.to_thread(writer.hand_back)
                return
            started = self.clock.now()
            try:
                reply = await self._call(claimed, target, writer, step_id)
            except (BadReply, httpx.HTTPError) as exc:
                failure = {"name": type(exc).__name__, "message": _describe(exc, target)}
                await asyncio.to_thread(writer.attempt_failed, step_id, failure, None, started)
                return
            step_id = await asyncio.to_thread(writer.handle, reply, step_id, started)

    async def _call(
        self, claimed: ClaimedRun, target: SdkTarget, writer: Writer, step_id: str
    ) -> Reply:
        steps, stack = await asyncio.to_thread(memo, writer.steps.values(), self._outputs)
        call = Call(
            run_id=writer.steps_run_id,
            function_id=target.id,
            step_id=step_id,
            events=[sdk_event(event) for event in claimed.events],
            steps=steps,
            stack=stack,
            attempt=writer.attempt_for(step_id),
            max_attempts=target.max_attempts,
        )
        body = self._encode(call.payload())
        if len(body) > USE_API_BYTES:
            body = self._encode(call.payload(use_api=True))
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "x-run-id": writer.steps_run_id,
            "x-inngest-step-id": step_id,
            **tracing.headers(writer.trace),
        }
        now = self.clock.now()
        if self.keys is not None:
            headers["x-inngest-signature"] = self.keys.sign(body, now)
        client = self._client()
        request = client.build_request("POST", call.url(target.url), content=body, headers=headers)
        response = await client.send(request, stream=True)
        try:
            raw = await self._read(response)
        finally:
            await response.aclose()
        self._check_signature(response, raw)
        return parse_reply(response.status_code, response.headers, raw, self.clock.now())

    async def aclose(self) -> None:
        """Close the connections to apps opened from the running event loop."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def _encode(self, payload: dict[str, Any]) -> bytes:
        if self.keys is not None:
            return canonical(payload)  # what the app verifies the signature against
        return json.dumps(payload, separators=(",", ":")).encode()

    async def _read(self, response: httpx.Response) -> bytes:
        limit = self.settings.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"the app's answer is larger than {limit // (1024 * 1024)} MiB")
            chunks.append(chunk)
        return b"".join(chunks)

    def _check_signature(self, response: httpx.Response, raw: bytes) -> None:
        """Verify a signed answer (SDKs in cloud mode sign theirs); unsigned ones pass."""
        header = response.headers.get("x-inngest-signature")
        if self.keys is None or header is None:
            return
        if not self.keys.verify(header, raw, self.clock.now()):
            raise BadReply("the app's answer carries a signature that does not match our key")

    def _client(self) -> httpx.AsyncClient:
        """One connection pool per event loop (a replaced worker has a new loop)."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            timeout = httpx.Timeout(
                self.settings.request_timeout_seconds,
                connect=self.settings.connect_timeout_seconds,
            )
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
            client = self._clients[loop] = httpx.AsyncClient(timeout=timeout, limits=limits)
        return client


def _describe(exc: BaseException, target: SdkTarget) -> str:
    """A failed call in words, naming the app's URL (never a key)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer from {target.url} in time ({type(exc).__name__})"
    if isinstance(exc, httpx.HTTPError):
        return f"calling {target.url} failed: {str(exc) or type(exc).__name__}"
    return str(exc)
