"""The result table: rows of `| figure | direct | plain mitmdump | proxy | ratio | target | met? |`, each cell
the median of the per-round values with the lowest and highest round."""

from __future__ import annotations

from bench.figures import NAN
from bench.stats import Spread

SLOTS = ("direct", "plain", "proxy")
Spreads = dict[str, dict[str, Spread | None]]


def cell(s: Spread | None, digits: int = 2, suffix: str = "") -> str:
    return s.fmt(digits, suffix) if s else "—"


def met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**NO**")


class Table:
    """Rows of `| figure | direct | plain mitmdump | proxy | ratio | target | met? |`."""

    def __init__(self, spreads: Spreads) -> None:
        self.s = spreads
        self.lines = [
            "| figure | direct | plain mitmdump | proxy | ratio | target | met? |",
            "|---|---|---|---|---|---|---|",
        ]

    def mid(self, fig: str, key: str) -> float:
        v = self.s.get(fig, {}).get(key)
        return v.mid if v else NAN

    def ratio(
        self, fig: str, key: str = "ratio", digits: int = 2, suffix: str = "×", prefix: str = ""
    ) -> str:
        return prefix + cell(self.s[fig].get(key), digits, suffix)

    def row(
        self, fig: str, label: str, digits: int, ratio: str = "—", target: str = "—", ok: bool | None = None
    ) -> None:
        cells = " | ".join(cell(self.s[fig].get(slot), digits) for slot in SLOTS)
        self.lines.append(f"| {label} | {cells} | {ratio} | {target} | {met(ok)} |")

    def section(self, title: str) -> None:
        self.lines.append(f"| **{title}** | | | | | | |")

    def raw(
        self, label: str, proxy: str, target: str = "—", ok: bool | None = None, ratio: str = "—"
    ) -> None:
        self.lines.append(f"| {label} | — | — | {proxy} | {ratio} | {target} | {met(ok)} |")
