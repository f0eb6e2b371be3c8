"""JSON in and out of the proxy: orjson for speed, the standard library for what orjson refuses.

Request bodies of coding agents run to hundreds of KB; orjson decodes and, above all, encodes them much
faster than `json` (measured on the 200 KB agent request: bench/README.md). Where orjson refuses what
`json` takes (escaped lone UTF-16 surrogates, UTF-16/32 text, non-string dict keys, integers beyond 64
bits on output) we fall back to `json`, keeping its behaviour and error messages. Two differences
remain, both for values no provider accepts: NaN and Infinity are refused (they are not JSON), and
integers beyond 64 bits are read as floats.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

JSONDecodeError = json.JSONDecodeError  # orjson.JSONDecodeError subclasses it


def _no_constants(name: str) -> Any:
    err = JSONDecodeError(f"{name} is not a valid JSON value", name, 0)
    err.args = (err.msg,)  # no position: `json` does not say where the constant was
    raise err


def loads(data: bytes | str) -> Any:
    """Parse JSON text; raises json.JSONDecodeError or UnicodeDecodeError like `json`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data, parse_constant=_no_constants)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (non-ASCII kept as is)."""
    try:
        return orjson.dumps(obj)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def dumps_pretty(obj: Any) -> bytes:
    """Indented for people (mitmweb's view of a reassembled stream)."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2)
    except TypeError:
        return json.dumps(obj, ensure_ascii=False, indent=2).encode("utf-8")
