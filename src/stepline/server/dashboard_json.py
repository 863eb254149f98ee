"""JSON values as the dashboard shows them: pretty-printed, or a large output's size and link.

An output kept as a blob (over the inline limit, see `engine.outputs`) is never inlined in a
page: it shows as its size ("6.2 MiB") with a Download link to the dashboard's own download
route (`/runs/{id}/output`, `/runs/{id}/steps/{hash}/output`), which the sign-in cookie opens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stepline._sizes import format_size
from stepline.store.blobs import blob_ref

LONG_JSON_CHARS = 600
LONG_JSON_LINES = 15


@dataclass(frozen=True, kw_only=True, slots=True)
class JsonBlock:
    """A JSON value pretty-printed; `long` ones are shown collapsed."""

    text: str
    long: bool
    summary: str


@dataclass(frozen=True, kw_only=True, slots=True)
class BlobView:
    """A large output: its size in words and where to download it."""

    size: str
    href: str


def json_block(value: Any) -> JsonBlock:
    """Pretty JSON; long when it has many lines or characters."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    lines = text.count("\n") + 1
    long = lines > LONG_JSON_LINES or len(text) > LONG_JSON_CHARS
    summary = f"{lines} lines, {len(text)} characters"
    return JsonBlock(text=text, long=long, summary=summary)


def output_block(output: str | None, href: str) -> JsonBlock | BlobView | None:
    """A stored output: pretty JSON, or (kept as a blob) its size and `href` to download it."""
    ref = blob_ref(output)
    if ref is not None:
        return BlobView(size=format_size(ref.size), href=href)
    return None if output is None else json_block(json.loads(output))
