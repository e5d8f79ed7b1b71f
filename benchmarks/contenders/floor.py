"""The floor: parsing each frame and nothing else. `orjson parse only` is the ratio base.

No capture can be faster than parsing its input, and the ratio to it, taken inside one round,
cancels most of the machine's noise (both runs see the same load), so targets are stated as it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

from benchmarks.contenders import Process

BASE = "orjson parse only"


def _parse_only(loads: Callable[[bytes], Any]) -> Callable[[bytes, list[bytes]], Process]:
    def setup(snapshot: bytes, history: list[bytes]) -> Process:
        def process(msgs: list[bytes]) -> None:
            for m in msgs:
                loads(m)

        return process

    return setup


CONTENDERS = {
    BASE: (
        _parse_only(orjson.loads),
        "orjson.loads of each frame -> dict/list/str (the ratio base)",
    ),
    "stdlib json parse only": (_parse_only(json.loads), "json.loads of each frame (for scale)"),
}
