"""The wheel a user installs carries the license (Apache-2.0) and the dashboard's files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_the_wheel_holds_the_license_and_the_dashboards_files(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("stepline-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [license_name] = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(license_name) == (ROOT / "LICENSE").read_bytes()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        assert "License-Expression: Apache-2.0" in archive.read(metadata).decode()
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert {
        "stepline/py.typed",
        "stepline/server/templates/base.html",
        "stepline/server/static/dashboard.css",
    } <= names
