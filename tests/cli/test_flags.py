"""`stepline trigger` flags become typed event data; `--data` must be a JSON object."""

from __future__ import annotations

import pytest

from stepline import errors
from stepline.cli._flags import parse_flags, parse_json_object

pytestmark = pytest.mark.timeout(10)


def test_flags_are_typed_like_a_person_means_them() -> None:
    data = parse_flags(
        [
            "--dry-run=true",
            "--limit=10",
            "--ratio=0.5",
            "--flag=true",
            "--off=FALSE",
            "--name=abc",
            "--code=007",
            "--ids=[1, 2]",
            '--quoted="10"',
            "--nothing=null",
            "--empty=",
        ]
    )

    assert data == {
        "dry_run": True,
        "limit": 10,
        "ratio": 0.5,
        "flag": True,
        "off": False,
        "name": "abc",
        "code": "007",
        "ids": [1, 2],
        "quoted": "10",
        "nothing": None,
        "empty": "",
    }


def test_a_separate_value_is_accepted() -> None:
    assert parse_flags(["--limit", "5", "--name", "abc"]) == {"limit": 5, "name": "abc"}


@pytest.mark.parametrize("args", [["--per-page"], ["--per-page", "--limit=2"], ["--no-x"]])
def test_a_flag_without_a_value_is_refused_naming_it(args: list[str]) -> None:
    flag = args[0]
    with pytest.raises(errors.InvalidInput, match=rf"^{flag}: no value; give one as {flag}=VALUE"):
        parse_flags(args)


@pytest.mark.parametrize("text", ["[1, 2", "{oops"])
def test_a_value_opening_like_json_must_be_json(text: str) -> None:
    with pytest.raises(errors.InvalidInput, match=r"^--ids: not valid JSON"):
        parse_flags([f"--ids={text}"])
    assert parse_flags([f"--ids={text!r}".replace("'", '"')]) == {"ids": text}


def test_later_flag_wins() -> None:
    assert parse_flags(["--limit=1", "--limit=2"]) == {"limit": 2}


def test_nan_and_infinity_stay_strings() -> None:
    assert parse_flags(["--a=NaN", "--b=Infinity"]) == {"a": "NaN", "b": "Infinity"}


@pytest.mark.parametrize("args", [["stray"], ["-x"], ["--=1"], ["--bad key=1"], ["--"]])
def test_malformed_flags_are_rejected(args: list[str]) -> None:
    with pytest.raises(errors.InvalidInput):
        parse_flags(args)


@pytest.mark.parametrize("text", ["{oops", "[1]", "3", "NaN", ""])
def test_data_must_be_a_json_object(text: str) -> None:
    with pytest.raises(errors.InvalidInput, match=r"^--data: "):
        parse_json_object(text, "--data")
