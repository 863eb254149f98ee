"""`stepline runs show` and `runs output` with large outputs, on both stores: `show` gives the
size and the command to use; `runs output` writes the JSON exactly, to stdout or a file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stepline._sizes import format_size
from stepline.engine.engine import Engine
from stepline.server.app import create_app
from tests.cli.support import COMMAND, cli_env, run_cli
from tests.loopback import Servers
from tests.server.large_outputs_support import (
    SMALL_LIMITS,
    Finished,
    finished_report,
    large_outputs_app,
    make_rows,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def served(make_engine: Callable[..., Engine]) -> Iterator[tuple[str, Engine, Finished]]:
    engine = make_engine(large_outputs_app(), settings=SMALL_LIMITS)
    servers = Servers()
    url = servers.start(create_app(engine.operations))
    yield url, engine, finished_report(engine)
    servers.stop()


def test_runs_show_gives_the_size_and_runs_output_writes_the_json(
    served: tuple[str, Engine, Finished], tmp_path: Path
) -> None:
    url, engine, report = served
    run_id = report.run.id
    shown = run_cli(url, "runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    size = format_size(report.result.size)
    assert f"{size} of JSON; see `stepline runs output {run_id}`" in shown.stdout
    assert "row-00000" not in shown.stdout

    raw = subprocess.run(
        [*COMMAND, "runs", "output", run_id], env=cli_env(url), capture_output=True, timeout=20
    )
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == engine.store.read_blob(report.result)

    out = tmp_path / "out"
    out.mkdir()
    target = out / "rows.json"
    written = run_cli(url, "runs", "output", run_id, "--step", "make-rows", "-o", str(target))
    assert written.returncode == 0, written.stderr
    assert written.stderr.strip() == f"wrote {format_size(report.step.size)} to {target}"
    assert json.loads(target.read_bytes()) == make_rows()
    assert [p.name for p in out.iterdir()] == ["rows.json"]


def test_runs_output_of_nothing_fails_with_one_line_and_leaves_no_file(
    served: tuple[str, Engine, Finished], tmp_path: Path
) -> None:
    url, _, report = served
    out = tmp_path / "out"
    out.mkdir()
    target = out / "nothing.json"
    missing = run_cli(url, "runs", "output", report.run.id, "--step", "nope", "-o", str(target))
    assert missing.returncode != 0
    assert "has no step 'nope' (its steps: 'make-rows', 'note')" in missing.stderr
    assert not list(out.iterdir())
