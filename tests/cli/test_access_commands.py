"""`stepline tokens`, `stepline keys` and `stepline audit` against a real `stepline server`
whose only credentials are named ones: the first admin token is made with `--db`, the rest
over the API; a read token cannot cancel; a revoked token is refused at once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.support import run_cli, serving
from tests.loopback import free_port

pytestmark = pytest.mark.timeout(60)


def _secret(output: str) -> str:
    lines = output.strip().splitlines()
    assert lines[0].startswith("Created ") and "shown this once" in lines[0], output
    return lines[-1]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`stepline server` on a database holding only a named admin token; URL and token."""
    db = str(tmp_path / "stepline.db")
    made = run_cli(
        "http://unused", "tokens", "create", "first-admin", "--role", "admin", "--db", db
    )
    assert made.returncode == 0, made.stderr
    token = _secret(made.stdout)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with serving(url, "server", "--db", db, "--port", str(port), log=tmp_path / "server.log"):
        yield url, token


def test_tokens_keys_and_audit_commands_over_a_server_with_named_tokens_only(
    server: tuple[str, str],
) -> None:
    url, admin = server
    assert httpx.get(f"{url}/v1/runs").status_code == 401, "closed without --api-token"

    made = run_cli(url, "tokens", "create", "wallboard", "--role", "read", "--token", admin)
    assert made.returncode == 0, made.stderr
    assert "role read, every function" in made.stdout
    reader = _secret(made.stdout)
    listed = run_cli(url, "tokens", "list", "--token", admin)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split()[:2] for line in listed.stdout.splitlines()]
    assert [row for row in rows if row[:1] in (["first-admin"], ["wallboard"])] == [
        ["first-admin", "admin"],
        ["wallboard", "read"],
    ]
    assert reader not in listed.stdout and admin not in listed.stdout

    key = run_cli(url, "keys", "create", "shop", "--token", admin)
    assert key.returncode == 0, key.stderr
    assert httpx.post(f"{url}/e/{_secret(key.stdout)}", json={"name": "x/y"}).status_code == 200

    refused = run_cli(url, "runs", "cancel", "--function", "echo", "--token", reader)
    assert refused.returncode == 2
    assert "needs the operate role" in refused.stderr

    revoked = run_cli(url, "tokens", "revoke", "wallboard", "--reason", "leaked", "--token", admin)
    assert revoked.returncode == 0, revoked.stderr
    gone = run_cli(url, "runs", "list", "--token", reader)
    assert gone.returncode == 2 and "revoked" in gone.stderr

    audit = run_cli(url, "audit", "-o", "json", "--token", admin)
    assert audit.returncode == 0, audit.stderr
    entries = [(e["actor"], e["action"], e["target"]) for e in json.loads(audit.stdout)["data"]]
    assert entries == [
        ("first-admin", "token.revoke", "wallboard"),
        ("first-admin", "key.create", "shop"),
        ("first-admin", "token.create", "wallboard"),
        ("client", "token.create", "first-admin"),
    ]
    table = run_cli(url, "audit", "--token", admin)
    assert "token.revoke" in table.stdout and "leaked" in table.stdout
