"""One rule for turning provenance values into JSON: arrays and tuples become lists, anything
else unknown becomes its string, so writing a manifest or checkpoint never fails on a type."""

from __future__ import annotations

from typing import Any


def to_jsonable(obj: Any) -> Any:
    """``json.dumps(..., default=to_jsonable)`` hook."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
