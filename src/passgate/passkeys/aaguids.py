"""Model names for AAGUIDs, for display only: a claimed AAGUID never decides anything."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

_NAMES = Path(__file__).parent / "data" / "aaguid-names.json"
ZERO = "00000000-0000-0000-0000-000000000000"


@cache
def _community_names() -> dict[str, str]:
    names: dict[str, str] = json.loads(_NAMES.read_text(encoding="utf-8"))
    return names


def model_name(aaguid: str) -> str | None:
    if aaguid == ZERO:
        return None
    return _community_names().get(aaguid.lower())
