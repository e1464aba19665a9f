"""deploy/ for real: two app processes behind Debian's nginx (deploy/launch.py), driven through the proxy.

Several sessions (real Chromium through Playwright, and Streamlit-protocol sessions from
bench/stclient.py) open the app through nginx; each session's reruns keep working on its own
upstream (the routing cookie pins it); when one app process is stopped, the sessions on the other
keep working. Skipped without nginx or Chromium, except under CI, where both must be installed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from stclient import Session  # noqa: E402

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.browser


def _need(tool: str | None, name: str) -> None:
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required under CI (apt-get install {name})")
        pytest.skip(f"no {name} installed (apt-get install {name})")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    _need(NGINX, "nginx")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    logs = tmp_path_factory.mktemp("apps")
    env = {**os.environ, "DROPBLOCK_LAB_OFFLINE": "1", "TORCH_HOME": str(tmp_path_factory.mktemp("torch"))}
    env.pop("DROPBLOCK_LAB_WEIGHTS", None)
    env.pop("DROPBLOCK_LAB_HELPERS", None)  # as the launcher runs by default: one heavy-round helper per app
    launcher = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy" / "launch.py"), "--processes", "2", "--port", str(port),
         "--nginx", NGINX, "--log-dir", str(logs)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    apps: dict[int, int] = {}  # port -> pid
    deadline = time.time() + 180
    for line in launcher.stdout:
        if line.startswith("app pid="):
            pid, app_port = (int(f.split("=")[1]) for f in line.split()[1:3])
            apps[app_port] = pid
        if line.startswith("ready") or time.time() > deadline:
            break
    assert len(apps) == 2, "the launcher did not start two app processes"
    yield f"http://127.0.0.1:{port}", apps
    running = [pid for pid in apps.values()  # a test stops one app process on purpose
               if Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()]
    helpers = [h for pid in running for h in _helpers_of(pid)]
    launcher.terminate()  # before any check: a failed one must not leave the cluster running
    launcher.wait(timeout=60)
    assert running and len(helpers) == len(running), "each app process starts one heavy-round helper with the model"
    for pid in [*apps.values(), *helpers]:
        deadline = time.time() + 30
        while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text() \
                and time.time() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text(), \
            "an app process or its helper outlived the launcher"


def _helpers_of(pid: int) -> list[int]:
    """The heavy-round helper processes (models/offload.py) of app process ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid \
                    and b"models.offload" in (entry / "cmdline").read_bytes():
                out.append(int(entry.name))
        except (OSError, IndexError):
            continue
    return out


async def _session_on(url: str, seed: int) -> tuple[Session, str]:
    s = Session(url, timeout=120)
    r = await s.open("Mask_explorer", f"seed={seed}&kp=0.8&b=5")  # 2 pictures: the CAMs (the grid is inline)
    assert not r.errors and r.pictures >= 2
    return s, s.cookies


def test_protocol_sessions_stick_to_their_upstream_and_survive_a_stopped_one(cluster):
    url, apps = cluster

    async def scenario():
        sessions = [await _session_on(url, 100 + i) for i in range(8)]
        # each session's socket is on one app process: count the sockets per process
        await asyncio.sleep(0.5)
        per_app = {pid: 0 for pid in apps.values()}
        for pid in apps.values():
            out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{_port_of(apps, pid)} )"],
                                 capture_output=True, text=True).stdout
            per_app[pid] = len(out.splitlines())
        assert all(n > 0 for n in per_app.values()), f"the cookie hash sent every session to one process: {per_app}"
        # reruns (seed changes, with their pictures fetched through the proxy) keep working on each
        for k, (s, _) in enumerate(sessions):
            for step in range(3):
                r = await s.move("Seed", 200 + 10 * k + step)
                assert not r.errors and r.pictures >= 2, r.errors
        # stop one upstream: sessions on the other keep working; a new session still gets served
        victim_port, victim = next(iter(apps.items()))
        os.kill(victim, 15)
        for _ in range(100):
            if not Path(f"/proc/{victim}").exists() or "zombie" in Path(f"/proc/{victim}/status").read_text():
                break
            await asyncio.sleep(0.1)
        survivors = 0
        for k, (s, _) in enumerate(sessions):
            try:
                r = await asyncio.wait_for(s.move("Seed", 500 + k), 60)
            except Exception:  # noqa: BLE001 -- this session lived on the stopped process
                continue
            assert not r.errors and r.pictures >= 2
            survivors += 1
        assert 0 < survivors < len(sessions)
        fresh, _ = await _session_on(url, 999)
        await fresh.close()
        for s, _ in sessions:
            await s.close()

    asyncio.run(scenario())


def _port_of(apps: dict[int, int], pid: int) -> int:
    return next(port for port, p in apps.items() if p == pid)


def test_browser_sessions_through_the_proxy(cluster):
    _need(CHROMIUM, "chromium")
    url, _ = cluster
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            pages = []
            for i in range(3):
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.goto(f"{url}/Mask_explorer?seed={10 + i}", wait_until="domcontentloaded")
                page.get_by_text(f"Masks drawn with seed {10 + i}.").first.wait_for(timeout=120_000)  # first: the wide grid
                pages.append(page)
            for i, page in enumerate(pages):
                cookie = [c for c in page.context.cookies() if c["name"] == "dbl_route"]
                assert cookie, "nginx did not set the routing cookie"
                for step in range(2):
                    box = page.locator('input[aria-label="Seed"]')
                    box.fill(str(50 + 10 * i + step))
                    box.press("Enter")
                    page.get_by_text(f"Masks drawn with seed {50 + 10 * i + step}.").first.wait_for(timeout=120_000)
                assert page.locator('[data-testid="stException"]').count() == 0
                assert "Connection error" not in page.content()
        finally:
            browser.close()
