"""A classroom at once: N concurrent browser sessions against one app process, bounded in time.

Starts ``streamlit run app.py`` on a free loopback port, then drives N headless Chromium
sessions (one browser context each, Debian's /usr/bin/chromium through Playwright). Each session
opens the mask explorer with its own parameters (time to first render), then keeps typing new
seeds into the sidebar, as a student moving a control does, and waits until the masks for that
seed are rendered. Prints sessions served, results rendered, median and p95 time to a rendered
result, and the app process's peak memory. The browsers share this machine's cores with the server, so the figures
are pessimistic for a real classroom, where each student's browser runs on their own machine.

    .venv/bin/python bench/load.py --sessions 10 30 --seconds 45
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_app(port: int) -> subprocess.Popen:
    env = {**os.environ, "DROPBLOCK_LAB_OFFLINE": os.environ.get("DROPBLOCK_LAB_OFFLINE", "1")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address",
         "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("the app did not start")


async def settled(page, text: str) -> None:
    await page.get_by_text(text).first.wait_for(timeout=120_000)
    await page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=120_000)


async def student(i: int, browser, url: str, deadline: float, stats: dict[str, list]) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        start = time.perf_counter()
        seed = i * 1000
        await page.goto(f"{url}/Mask_explorer?seed={seed}&kp={(0.95, 0.9, 0.8, 0.7)[i % 4]}&b={3 + i % 5}",
                        wait_until="domcontentloaded", timeout=300_000)
        await settled(page, f"Masks drawn with seed {seed}.")
        stats["first"].append(time.perf_counter() - start)
        seed_box = page.locator('input[aria-label="Seed"]')
        while time.perf_counter() < deadline:
            seed += 1
            start = time.perf_counter()
            await seed_box.fill(str(seed))
            await seed_box.press("Enter")
            await settled(page, f"Masks drawn with seed {seed}.")
            if await page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count():
                stats["errors"].append(f"session {i}: error box shown")
            stats["interaction"].append(time.perf_counter() - start)
    except Exception as err:  # noqa: BLE001 -- counted and reported, the run goes on
        if time.perf_counter() < deadline:
            stats["errors"].append(f"session {i}: {type(err).__name__}: {str(err).splitlines()[0]}"[:200])
    finally:
        await context.close()


async def run_load(url: str, sessions: int, seconds: float) -> dict[str, list]:
    from playwright.async_api import async_playwright

    stats: dict[str, list] = {"first": [], "interaction": [], "errors": []}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(student(i, browser, url, deadline, stats) for i in range(sessions)))
        await browser.close()
    return stats


def quantiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--seconds", type=float, default=45.0)
    args = parser.parse_args()
    if shutil.which("chromium") is None:
        sys.exit("needs Debian's chromium (apt-get install chromium)")
    os.environ.setdefault("TORCH_HOME", tempfile.mkdtemp())
    print(f"{'sessions':>8}{'served':>8}{'first render s':>22}{'results':>9}{'per interaction s':>22}"
          f"{'errors':>8}{'app peak MB':>13}")
    print(f"{'':>8}{'':>8}{'median / p95':>22}{'':>9}{'median / p95':>22}")
    for n in args.sessions:
        port = free_port()
        app = start_app(port)
        try:
            asyncio.run(run_load(f"http://127.0.0.1:{port}", 1, 5))  # warm-up: model load, first clean pass
            stats = asyncio.run(run_load(f"http://127.0.0.1:{port}", n, args.seconds))
            peak = peak_rss_mb(app.pid)
        finally:
            app.terminate()
            app.wait(timeout=30)
        first, inter = quantiles(stats["first"]), quantiles(stats["interaction"])
        print(f"{n:>8}{len(stats['first']):>8}{first[0]:>13.2f} / {first[1]:<6.2f}{len(stats['interaction']):>9}"
              f"{inter[0]:>13.2f} / {inter[1]:<6.2f}{len(stats['errors']):>8}{peak:>13.0f}")
        for e in stats["errors"][:5]:
            print("   ", e)


if __name__ == "__main__":
    main()
