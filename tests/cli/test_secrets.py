"""`stepline server` secrets: strong, distinct, and readable from files or the environment.

A refused configuration exits with code 2 and one line naming the option, never the secret.
A server given its secrets as files keeps them off its command line (what `ps` shows).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stepline import errors
from stepline.cli._secrets import MIN_SECRET_LENGTH, Secrets, auth_settings
from stepline.store.sqlite import SqliteStore
from tests.cli.support import COMMAND, serving
from tests.loopback import free_port

pytestmark = pytest.mark.timeout(30)

KEY = "event-key-0123456789abcdef"
TOKEN = "api-token-0123456789abcdef"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    return {**env, **extra}


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "stepline.db"
    store = SqliteStore(path)
    store.upgrade()
    store.close()
    return str(path)


def _refused(db: str, *args: str, **env: str) -> str:
    result = subprocess.run(
        [*COMMAND, "server", "--db", db, "--port", str(free_port()), *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    return result.stderr.strip()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--event-key", TOKEN, "--api-token", TOKEN],
            {},
            "--event-key and --api-token must differ",
        ),
        ([], {"STEPLINE_EVENT_KEY": f"{KEY} {TOKEN}", "STEPLINE_API_TOKEN": TOKEN}, "must differ"),
        (["--event-key", KEY, "--api-token", "x"], {}, "--api-token must be at least 16"),
        (["--event-key", "short", "--api-token", TOKEN], {}, "--event-key must be at least 16"),
        (["--insecure", "--api-token", "x"], {}, "--api-token must be at least 16"),
    ],
)
def test_weak_or_shared_secrets_are_refused(
    db: str, args: list[str], env: dict[str, str], message: str
) -> None:
    line = _refused(db, *args, **env)
    assert "\n" not in line and line.startswith("error: ") and message in line
    assert TOKEN not in line and KEY not in line


def test_token_file_conflicts_and_missing_files_are_refused(db: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    both = _refused(
        db, "--event-key", KEY, "--api-token", TOKEN, "--api-token-file", str(token_file)
    )
    assert "give --api-token or --api-token-file, not both" in both
    missing = _refused(db, "--event-key", KEY, "--api-token-file", str(tmp_path / "nope"))
    assert "'--api-token-file'" in missing and "does not exist" in missing  # click's usage error
    (tmp_path / "empty").write_text("\n")
    empty = _refused(db, "--event-key", KEY, "--api-token-file", str(tmp_path / "empty"))
    assert "is empty" in empty


@pytest.fixture
def server_from_files(db: str, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`stepline server` with its token from a file named by the environment, keys from a file."""
    (tmp_path / "token").write_text(TOKEN + "\n")
    (tmp_path / "keys").write_text(f"{KEY}\n\n  second-key-0123456789  \n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["server", "--db", db, "--port", str(port)]
    args += ["--event-key-file", str(tmp_path / "keys")]
    env = _env(STEPLINE_API_TOKEN_FILE=str(tmp_path / "token"))
    with serving(url, *args, log=tmp_path / "server.log", env=env) as process:
        yield url, process


def test_secrets_from_files_work_and_stay_off_the_command_line(
    server_from_files: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = server_from_files
    bearer = {"authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{url}/v1/runs", headers=bearer).status_code == 200
    assert httpx.get(f"{url}/v1/runs", headers={"authorization": "Bearer x"}).status_code == 401
    for key in (KEY, "second-key-0123456789"):
        sent = httpx.post(f"{url}/e/{key}", json={"name": "files/ok"})
        assert sent.status_code == 200, key
    assert httpx.post(f"{url}/e/not-a-key", json={"name": "files/ok"}).status_code == 401
    command_line = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
    assert TOKEN not in command_line and KEY not in command_line


def test_dev_on_loopback_takes_any_secret_but_never_a_shared_one() -> None:
    short = Secrets(event_keys=("k",), api_token="t")
    assert auth_settings("127.0.0.1", short, dev=True, open_allowed=True).api_token == "t"
    with pytest.raises(errors.ConfigurationError, match="at least 16"):
        auth_settings("0.0.0.0", short, dev=True, open_allowed=True)
    shared = Secrets(event_keys=("same",), api_token="same")
    with pytest.raises(errors.ConfigurationError, match="must differ"):
        auth_settings("127.0.0.1", shared, dev=True, open_allowed=True)
    strong = Secrets(event_keys=(KEY,), api_token="y" * MIN_SECRET_LENGTH)
    assert auth_settings("0.0.0.0", strong, dev=False, open_allowed=False).event_keys == (KEY,)
