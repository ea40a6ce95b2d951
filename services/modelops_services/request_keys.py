"""Request keys: the `x-request-id` a gateway gives a request and every mirrored copy
of it, by which the monitors match a shadow's answers with the stable's."""

from __future__ import annotations

import re
from typing import Any

KEY = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def valid_key(key: Any) -> bool:
    """A key the monitors accept: short, and nothing that needs escaping."""
    return isinstance(key, str) and KEY.fullmatch(key) is not None
