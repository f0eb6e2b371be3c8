"""Real long texts, all offline: what a model's long answers look like (prose, markdown with tables,
code, JSON, long lists), for proving that the repetition guard leaves normal answers alone, and a
looping answer for proving it does not."""

from __future__ import annotations

import builtins
import functools
import itertools
import json
import math
import os
import re
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def long_texts() -> dict[str, str]:
    """Name -> text, 15k to 120k characters each."""
    return {
        "README (markdown, tables, code)": (ROOT / "README.md").read_text(encoding="utf-8"),
        "bench results (JSON)": (ROOT / "bench" / "results" / "latest.json").read_text(encoding="utf-8"),
        "failover.py (code)": (ROOT / "addons" / "pipeline" / "failover.py").read_text(encoding="utf-8"),
        "argparse.py (stdlib code)": (STDLIB / "argparse.py").read_text(encoding="utf-8"),
        "Python reference (prose)": (STDLIB / "pydoc_data" / "topics.py").read_text(encoding="utf-8")[
            :120000
        ],
        "numbered list": numbered_list(),
        "JSON listing": json.dumps({n: sorted(dir(getattr(builtins, n))) for n in dir(builtins)}, indent=2),
    }


def numbered_list() -> str:
    """A long numbered markdown list: the public names of a few modules with the first line of their
    documentation (real text; many lines alike, none the same)."""
    lines = []
    for module in (builtins, os, itertools, functools, math, re, json):
        for name in sorted(n for n in dir(module) if not n.startswith("_")):
            doc = (getattr(module, name).__doc__ or "").strip().splitlines() or ["(undocumented)"]
            lines.append(f"{len(lines) + 1}. **`{module.__name__}.{name}`**: {doc[0]}")
    return "\n".join(lines)


def looping(block: str, times: int, lead: str = "Let me think about this step by step.\n\n") -> str:
    """An answer that starts normally and then repeats `block` over and over."""
    return lead + block * times


def pieces(text: str, sizes: tuple[int, ...] = (3, 17, 9, 41, 12, 26, 5, 33)) -> list[str]:
    """`text` cut as a model streams it: a few characters to a few tokens per chunk, no two alike."""
    out, at, k = [], 0, 0
    while at < len(text):
        size = sizes[k % len(sizes)]
        out.append(text[at : at + size])
        at, k = at + size, k + 1
    return out
