"""Screenshot what mitmweb shows for LLM flows, to look at it without clicking around.

Starts the fake OpenRouter (tests/fakes) and mitmweb with the addon (tests/harness.py), sends a few
requests with the openai SDK, and saves two PNGs taken with headless Chromium: the flow list and the
streamed flow's response tab. Everything runs on 127.0.0.1; nothing real is contacted.

    .venv312/bin/python scripts/mitmweb_screenshot.py [--out docs/screenshots]

Needs Chromium (`apt-get install -y chromium`). The mitmweb used is the one next to the Python running
this script, so `.venv/bin/python` shows mitmproxy 11 and `.venv312/bin/python` mitmproxy 12.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import openai  # noqa: E402

from tests.fakes.fake_openrouter import FakeOpenRouter  # noqa: E402
from tests.harness import ProxyProcess, mitmproxy_major  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
MODEL = "openai/gpt-4o-mini"
# Made-up keys, known only to the fake OpenRouter.
# The flow list with the addon's comment column (mitmweb's default leaves it out).
COLUMNS = ("icon", "path", "method", "status", "size", "time", "comment")
KEYS = ("sk-or-v1-demo-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "sk-or-v1-demo-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1600,900",
]


def send_requests(proxy: ProxyProcess) -> None:
    client = openai.OpenAI(
        base_url=proxy.base_url,
        api_key="anything",  # the proxy supplies the real key
        max_retries=0,
        timeout=30,
        default_headers={"X-Session-ID": "demo"},
    )
    ask = client.chat.completions.create
    print(
        "plain:   ",
        ask(model=MODEL, messages=[{"role": "user", "content": "plain one"}]).choices[0].message.content,
    )
    stream = ask(
        model=MODEL,
        messages=[{"role": "user", "content": "streamed one, in a few pieces"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    print("streamed:", "".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    r = ask(model=MODEL, messages=[{"role": "user", "content": "!/set(project=demo) hello"}])
    print("command: ", r.choices[0].message.content)
    r = ask(model=MODEL, messages=[{"role": "user", "content": "!/status"}])
    print("status:  ", (r.choices[0].message.content or "").splitlines()[0], "...")


def wait_for_flows(ui: httpx.Client, count: int, timeout: float = 15.0) -> list[dict[str, Any]]:
    """The flows mitmweb holds, once `count` of them are complete (have a response)."""
    end = time.monotonic() + timeout
    while True:
        flows: list[dict[str, Any]] = ui.get("/flows").json()
        done = [f for f in flows if f.get("response")]
        if len(done) >= count or time.monotonic() > end:
            return flows
        time.sleep(0.1)


def streamed_flow_id(flows: list[dict[str, Any]]) -> str:
    for f in flows:
        headers = {k.lower(): v for k, v in (f.get("response") or {}).get("headers", [])}
        if "text/event-stream" in headers.get("content-type", ""):
            return str(f["id"])
    for f in flows:  # no content type to go by: the flow whose comment says it streamed
        if "stream" in (f.get("comment") or ""):
            return str(f["id"])
    raise RuntimeError("no streamed flow found in mitmweb's /flows")


def screenshot(url: str, path: Path, budget_ms: int) -> None:
    with tempfile.TemporaryDirectory(prefix="llm-intercept-chromium-") as profile:
        cmd = [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={path}",
            url,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    if r.returncode != 0 or not path.exists():
        raise RuntimeError(f"chromium failed ({r.returncode}):\n{r.stderr[-2000:]}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots", help="directory for the PNGs")
    ap.add_argument(
        "--budget-ms", type=int, default=8000, help="Chromium's --virtual-time-budget (time the UI gets)"
    )
    args = ap.parse_args()
    if not CHROMIUM.exists():
        print(f"{CHROMIUM} not found; install it with:  apt-get install -y chromium", file=sys.stderr)
        return 1
    if (
        shutil.which("fc-list")
        and "emoji" not in subprocess.run(["fc-list"], capture_output=True, text=True).stdout.lower()
    ):
        print("note: no emoji font, so flow marks show as boxes (apt-get install -y fonts-noto-color-emoji)")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    fake = FakeOpenRouter(KEYS)
    with fake:
        env = {
            "OPENROUTER_API_KEY_1": KEYS[0],
            "OPENROUTER_API_KEY_2": KEYS[1],
            "OPENROUTER_API_BASE_URL": fake.base_url,
        }
        columns = [a for c in COLUMNS for a in ("--set", f"web_columns={c}")]
        proxy = ProxyProcess(env=env, web=True, extra_args=columns)
        try:
            proxy.start()
            major = mitmproxy_major()
            print(f"mitmweb (mitmproxy {major}) on http://127.0.0.1:{proxy.web_port}")
            send_requests(proxy)
            # mitmproxy 12 wants the web password: as a Bearer header for the API, `?token=` for a browser.
            auth = {"authorization": f"Bearer {proxy.web_password}"} if major >= 12 else {}
            query = f"?token={proxy.web_password}" if major >= 12 else ""
            base = f"http://127.0.0.1:{proxy.web_port}/{query}"
            with httpx.Client(
                base_url=f"http://127.0.0.1:{proxy.web_port}", headers=auth, trust_env=False
            ) as ui:
                flows = wait_for_flows(ui, 4)
            # mitmweb's comment column is 150px wide, so the list shows only its start: print it whole.
            for f in flows:
                print(f"comment {str(f['id'])[:8]}: {f.get('comment') or '-'}")
            shots = [
                (out / "flow-list.png", f"{base}#/flows"),
                (out / "flow-detail.png", f"{base}#/flows/{streamed_flow_id(flows)}/response"),
            ]
            for path, url in shots:
                path.unlink(missing_ok=True)
                screenshot(url, path, args.budget_ms)
                print(path)
        finally:
            proxy.stop()
            shutil.rmtree(proxy.tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
