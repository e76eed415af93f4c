"""Screenshots of the Dagster UI after ``ghtrader demo`` and a UI backfill (issue 13).

What a user sees, taken with headless Chromium at 1600x1000:

1. ``1_check_partitions.png``: the ``book_integrity`` check of ``SHFE/cu_ticks``, its
   *Partitions* tab: one result per trading day (demo days and backfilled days), the
   demo's defective day failed.
2. ``2_failed_day.png``: ``SHFE/cu_ticks`` -> *Partitions* -> the defective day: its
   materialization metadata leads with ``verdict: blocked``, the reason, the action hint and
   ``max_gap_seconds``.
3. ``3a_coverage_recent_days.png`` / ``3b_coverage_report_table.png``: the
   ``coverage_report`` asset's latest materialization (*Events* tab, full width):
   ``recent_days`` (pass / warn / blocked per day and symbol) and the ``report`` table.
4. ``4_timeline.png``: *Overview* -> *Timeline*: the demo's runs under the
   ``ghtrader_assets`` code location, next to the backfill's.
5. ``5_backfill.png``: the UI backfill's page.
6. ``6_run_reexecute.png``: the defective day's run page (*Re-execute* without the
   "different code location" warning).

Usage (as root on Debian, which installs ``chromium`` if missing; nothing else needs it)::

    .venv/bin/python bench/ui_screenshots.py [OUT_DIR]      # default /tmp/ui2

It runs everything in a fresh folder under OUT_DIR (data, DAGSTER_HOME), starts
``dagster dev`` on a free 127.0.0.1 port and stops it (and Chromium) at the end.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CU_CHAIN = [
    ["SHFE", f"cu_{name}"] for name in ("roll_schedule", "ticks", "validation_summary", "manifest")
]


def ensure_chromium() -> str:
    """Debian's chromium, installed here (never by the test suite or CI)."""
    found = shutil.which("chromium")
    if found:
        return found
    subprocess.run("apt-get update && apt-get install -y chromium", shell=True, check=True)
    return shutil.which("chromium") or "chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5):
            return
        time.sleep(1)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def graphql(base: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(
        f"{base}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        doc = json.load(resp)
    if doc.get("errors"):
        raise RuntimeError(f"GraphQL errors: {doc['errors']}")
    return doc["data"]


LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""

BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status }
  }
}"""


def launch_backfill(base: str, days: list[str]) -> str:
    """A backfill of the cu chain over ``days``, as *Materialize* -> range in the UI does."""
    params = {
        "partitionNames": days,
        "assetSelection": [{"path": p} for p in CU_CHAIN],
        "fromFailure": False,
        "tags": [],
    }
    result = graphql(base, LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
    if result["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {result}")
    return result["backfillId"]


def wait_backfill(base: str, backfill_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        status = graphql(base, BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"][
            "status"
        ]
        if status not in ("REQUESTED", "IN_PROGRESS"):
            return status
        time.sleep(3)
    return f"{status} (gave up waiting after {timeout:.0f} s)"


# --- Chromium over the DevTools protocol (clicks need more than --screenshot) ---------------


class Browser:
    """One headless Chromium page driven through the DevTools protocol."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.n = 0

    async def call(self, method: str, **params):
        self.n += 1
        me = self.n
        await self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        while True:
            msg = json.loads(await self.ws.recv())
            if msg.get("id") == me:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    async def js(self, expression: str):
        out = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return out.get("result", {}).get("value")

    async def goto(self, url: str, settle: float = 6.0) -> None:
        await self.call("Page.navigate", url=url)
        await asyncio.sleep(settle)

    async def click_text(self, text: str, settle: float = 4.0, last: bool = False) -> bool:
        """Click the innermost visible element whose text is exactly ``text`` (the first
        on the page, or the ``last``)."""
        script = (
            "(() => { const t = TEXT; const all = [...document.querySelectorAll('*')]"
            ".filter(e => e.offsetParent !== null && e.textContent.trim() === t);"
            " const inner = all.filter(e => ![...e.children].some(c => all.includes(c)));"
            " if (!inner.length) return false; inner[LAST ? inner.length - 1 : 0].click();"
            " return true; })()"
        )
        script = script.replace("LAST", "true" if last else "false")
        done = await self.js(script.replace("TEXT", json.dumps(text)))
        await asyncio.sleep(settle)
        return bool(done)

    async def scroll_to(self, text: str, settle: float = 2.0) -> bool:
        """Scroll the innermost element whose text is exactly ``text`` to the top."""
        script = (
            "(() => { const t = TEXT; const all = [...document.querySelectorAll('*')]"
            ".filter(e => e.offsetParent !== null && e.textContent.trim() === t);"
            " if (!all.length) return false; all[all.length - 1].scrollIntoView(true);"
            " return true; })()"
        )
        done = await self.js(script.replace("TEXT", json.dumps(text)))
        await asyncio.sleep(settle)
        return bool(done)

    async def shot(self, path: Path) -> None:
        data = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(data["data"]))
        print(f"  saved {path}")


async def take_screenshots(
    chromium: str, base: str, out: Path, bad_day: str, backfill_id: str, bad_run: str
) -> None:
    import websockets

    port = free_port()
    profile = tempfile.mkdtemp(prefix="chromium-", dir=out)
    proc = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1600,1000",
            f"--remote-debugging-port={port}",
            "--remote-allow-origins=*",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/json/version", 60)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as resp:
            page = next(p for p in json.load(resp) if p["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            b = Browser(ws)
            await b.call("Page.enable")
            await b.call(
                "Emulation.setDeviceMetricsOverride",
                width=1600,
                height=1000,
                deviceScaleFactor=1,
                mobile=False,
            )
            ticks = f"{base}/assets/SHFE/cu_ticks"
            await b.goto(f"{base}/overview", settle=8)
            await b.click_text("Skip", settle=2)  # the first-visit "Join the community" dialog
            # 1. per-day check results: Checks -> book_integrity -> its Partitions tab
            await b.goto(f"{ticks}?view=checks", settle=8)
            await b.click_text("book_integrity")
            await b.click_text("Partitions", last=True)
            await b.shot(out / "1_check_partitions.png")
            # 2. the failed day: Partitions -> the day (metadata leads with the verdict)
            await b.goto(f"{ticks}?view=partitions&partition={bad_day}", settle=8)
            await b.shot(out / "2_failed_day.png")
            # 3. the coverage report's tables, on the Events tab (full width)
            await b.goto(f"{base}/assets/coverage_report?view=events", settle=8)
            await b.scroll_to("recent_days")
            await b.shot(out / "3a_coverage_recent_days.png")
            await b.scroll_to("report")
            await b.shot(out / "3b_coverage_report_table.png")
            await b.goto(f"{base}/overview/activity/timeline", settle=8)
            await b.click_text("1hr")  # the demo's and the backfill's runs side by side
            await b.shot(out / "4_timeline.png")
            await b.goto(f"{base}/runs/b/{backfill_id}", settle=8)
            await b.shot(out / "5_backfill.png")
            await b.goto(f"{base}/runs/{bad_run}", settle=8)
            await b.shot(out / "6_run_reexecute.png")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ui2").resolve()
    out.mkdir(parents=True, exist_ok=True)
    chromium = ensure_chromium()
    sys.path.insert(0, str(ROOT))
    from ghtrader_assets import calendar

    work = Path(tempfile.mkdtemp(prefix="ui-run-", dir=out))
    last = calendar.last_completed_trading_day(time_now())
    window = [last]
    while len(window) < 10:
        window.append(calendar.previous_trading_day(window[-1]))
    window.reverse()  # 10 trading days: the demo fills the last 5, the backfill 3 before
    env = {
        **os.environ,
        "GHTRADER_DATA_DIR": str(work / "data"),
        "DAGSTER_HOME": str(work / "dagster_home"),
        "GHTRADER_START_DATE": window[0].isoformat(),
        "GHTRADER_AUTOMATION": "off",
    }
    print(f"work dir {work}; partitions from {window[0]}")
    demo = subprocess.run(
        [str(VENV_BIN / "ghtrader"), "demo"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    (out / "demo_output.txt").write_text(demo.stdout + demo.stderr)
    print(f"ghtrader demo: exit {demo.returncode} (output in {out / 'demo_output.txt'})")
    bad_day, bad_run = "", ""
    for line in demo.stdout.splitlines():
        if "FAILED as planned" in line:
            bad_run, bad_day = line.split()[1], line.split("(")[1].split(")")[0]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(out / "dagster_dev.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            str(VENV_BIN / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=ROOT,
        env={**env, "PATH": f"{VENV_BIN}:{env.get('PATH', '')}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_http(f"{base}/server_info", 180)
        days = [d.isoformat() for d in window[2:5]]
        backfill_id = launch_backfill(base, days)
        print(f"UI backfill {backfill_id} of SHFE/cu over {', '.join(days)}")
        print(f"  backfill status: {wait_backfill(base, backfill_id, 600)}")
        refresh = subprocess.run(
            [
                sys.executable,
                "-c",
                "from ghtrader_assets.cli import _materialize_coverage as m; print(m() or 'ok')",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        print(f"coverage report refreshed: {refresh.stdout.strip()[-200:]}")
        asyncio.run(take_screenshots(chromium, base, out, bad_day, backfill_id, bad_run))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
    return 0


def time_now():
    import pandas as pd

    from ghtrader_assets import calendar

    return pd.Timestamp.now(tz=calendar.TZ)


if __name__ == "__main__":
    raise SystemExit(main())
