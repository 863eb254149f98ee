"""Internal event ids from `X-Inngest-Event-Id-Seed` (protocol §8.3), as Inngest derives them."""

from __future__ import annotations

import base64

import pytest
from ulid import ULID

from stepline.engine.event_seed import seeded_ids


def test_the_protocols_worked_example() -> None:
    assert seeded_ids("1700000000000,AAECAwQFBgcICQ==", 2) == [
        "01HF7YAT00000G40R40M30E20A",
        "01HF7YAT00000G40R40M30E20B",
    ]


def test_ids_carry_the_seeds_time_and_the_position_in_the_last_four_bytes() -> None:
    entropy = bytes([9, 8, 7, 6, 5, 4]) + (2**32 - 2).to_bytes(4, "big")
    seed = f"1750000000123,{base64.b64encode(entropy).decode()}"
    ids = seeded_ids(seed, 3)
    assert ids is not None and len(set(ids)) == 3
    ulids = [ULID.from_str(i) for i in ids]
    assert {u.milliseconds for u in ulids} == {1750000000123}
    tails = [bytes(u)[12:] for u in ulids]
    # 2³²-2 plus 1, 2 and 3, modulo 2³²: the counter wraps as Go's uint32 does
    assert [int.from_bytes(t, "big") for t in tails] == [2**32 - 1, 0, 1]
    assert {bytes(u)[6:12] for u in ulids} == {entropy[:6]}


def test_the_same_seed_gives_the_same_ids_and_another_seed_others() -> None:
    seed = "1700000000000,AAECAwQFBgcICQ=="
    assert seeded_ids(seed, 3) == seeded_ids(seed, 3)
    other = seeded_ids("1700000000000,CgkIBwYFBAMCAQ==", 3)
    assert other is not None and not set(other) & set(seeded_ids(seed, 3) or [])


@pytest.mark.parametrize(
    "seed",
    [
        None,
        "",
        "1700000000000",  # no entropy
        "1700000000000,AAECAwQFBgcICQ==,x",  # three parts
        "abc,AAECAwQFBgcICQ==",
        "0,AAECAwQFBgcICQ==",  # Go refuses millis <= 0
        "-5,AAECAwQFBgcICQ==",
        f"{2**48},AAECAwQFBgcICQ==",  # past a ULID's 48-bit time
        "1700000000000,AAECAwQFBgcI",  # 9 bytes
        "1700000000000,AAECAwQFBgcICQoL",  # 12 bytes
        "1700000000000,not base64!",
        "1700000000000,AAECAwQFBgcICQ",  # padding missing, as Go's StdEncoding refuses
    ],
)
def test_a_missing_or_malformed_seed_gives_no_ids(seed: str | None) -> None:
    assert seeded_ids(seed, 2) is None
