"""Stepline: self-hosted durable functions for Python."""

from stepline.client import Client
from stepline.engine.clock import FakeClock
from stepline.engine.engine import Engine, EngineSettings
from stepline.engine.retry import RetryPolicy
from stepline.engine.worker import WorkerSettings
from stepline.errors import (
    CommandFailed,
    CommandTimedOut,
    ConfigurationError,
    NonRetriableError,
    RetryAfterError,
    StepError,
    SteplineError,
)
from stepline.sdk.app import App, Function
from stepline.sdk.context import AsyncContext, Context
from stepline.sdk.event import Event, RunTrigger
from stepline.sdk.options import (
    Batch,
    CancelOn,
    Concurrency,
    Debounce,
    Priority,
    RateLimit,
    Singleton,
    Throttle,
    Timeouts,
)
from stepline.sdk.step import AsyncStep, Step
from stepline.sdk.triggers import cron, event

__all__ = [
    "App",
    "AsyncContext",
    "AsyncStep",
    "Batch",
    "CancelOn",
    "Client",
    "CommandFailed",
    "CommandTimedOut",
    "Concurrency",
    "ConfigurationError",
    "Context",
    "Debounce",
    "Engine",
    "EngineSettings",
    "Event",
    "FakeClock",
    "Function",
    "NonRetriableError",
    "Priority",
    "RateLimit",
    "RetryAfterError",
    "RetryPolicy",
    "RunTrigger",
    "Singleton",
    "Step",
    "StepError",
    "SteplineError",
    "Throttle",
    "Timeouts",
    "WorkerSettings",
    "cron",
    "event",
]
