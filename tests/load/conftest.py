"""The load campaign's report: printed at the end of the run (no -s needed), saved under pytest's tmp dir."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.load.support import REPORT, SIZE, LoadGemini, LoadOpenRouter

_saved: list[str] = []


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[LoadOpenRouter, LoadGemini]]:
    """Fresh fake upstreams per test module (each module starts its own proxy against them)."""
    with LoadOpenRouter() as openrouter, LoadGemini() as gemini:
        yield openrouter, gemini


@pytest.fixture(scope="session", autouse=True)
def _load_report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield
    if REPORT.lines:
        path = tmp_path_factory.getbasetemp() / "load-report.txt"
        path.write_text("\n".join(REPORT.lines) + "\n")
        _saved.append(str(path))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORT.lines:
        return
    terminalreporter.write_sep("-", f"llm-intercept load campaign ({SIZE})")
    for line in REPORT.lines:
        terminalreporter.write_line(line)
    for path in _saved:
        terminalreporter.write_line(f"report saved to {path}")
