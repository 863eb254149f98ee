"""Two apps for the Apps page: an official inngest-py app ("shop": greet and nightly) served
with FastAPI on loopback, and a Python app ("py-shop": py-echo)."""

from __future__ import annotations

import fastapi
import inngest
import inngest.fast_api

import stepline
from tests.loopback import Servers

SHOP_FUNCTIONS = ["shop-greet", "shop-nightly"]


def serve_shop(servers: Servers, stepline_url: str) -> str:
    """Serve the app, its client pointed at `stepline_url` (dev mode); its serve URL."""
    client = inngest.Inngest(
        app_id="shop",
        api_base_url=stepline_url,
        event_api_base_url=stepline_url,
        is_production=False,
    )

    @client.create_function(fn_id="greet", trigger=inngest.TriggerEvent(event="shop/greet"))
    def greet(ctx: inngest.ContextSync) -> str:
        return "hello"

    @client.create_function(fn_id="nightly", trigger=inngest.TriggerCron(cron="0 0 * * *"))
    def nightly(ctx: inngest.ContextSync) -> None:
        return None

    app = fastapi.FastAPI()
    inngest.fast_api.serve(app, client, [greet, nightly])
    return servers.start(app) + "/api/inngest"


def python_shop() -> stepline.App:
    """A Python app, "py-shop", with one function, "py-echo"."""
    app = stepline.App("py-shop")

    @app.function(id="py-echo", triggers=[stepline.event("apps/echo")])
    def echo(ctx: stepline.Context) -> None:
        return None

    return app
