"""A classroom at once: N students against the real app server, bounded in time.

Most students are protocol sessions (bench/stclient.py): Streamlit's own websocket messages, as
the frontend sends them, with the pictures fetched as a browser would; their CPU cost is tiny,
so the server's figures are not mixed with the clients'. A few students are real headless
Chromium sessions (Debian's /usr/bin/chromium through Playwright) that measure what a student
sees: from the action to the new picture drawn.

Student model (seeded): open a link, then repeatedly pause 3–8 s and take one action: move
keep_prob, move block_size, change the seed, or open another page; every student visits all five
pages over a run. Students arrive spread over ``--ramp`` seconds.

Scenarios:
  teacher-link  every student opens the same URL and moves controls among a few values (a lesson)
  own           every student has their own image, parameters and seeds (nothing shared)

Reported per scenario: sessions started and served, first render p50/p95, interaction p50/p95
(protocol: action -> script run finished, its deltas arrived and pictures fetched; browser:
action -> new picture drawn, a tile grid's new tiles included), errors, app peak RSS, server CPU
per interaction (the app processes' own /proc/<pid>/stat counters over the run, divided by every
script run the students asked for, first renders included), and the clients' and the machine's
CPU, so the share the clients took is visible. The last line is machine-readable.

Heavy views compute in rounds (issue 19) and may hold their script run open while they refine, so
the interaction time of a heavy page can include its whole refinement: it is kept as it was
defined, and beside it the protocol students' actions are split by what the page showed
(bench/stclient.py reads the app's markers: each round's caption says ``{done} of {total}
samples``, a view stopped by load says "the server is busy", a view waiting for its first round
shows a progress bar):

  light        an action whose run showed no marker: action -> run finished (as interaction)
  heavy_first  a heavy action: action -> the first ``N of M samples`` marker (a heavy view without
               rounds, which shows only a progress bar: the run's end)
  heavy_final  a heavy action: action -> the marker with N == M, or "the server is busy", or the
               run's end, whichever first (several views: when each has its final or busy marker)
  answer       light actions' times together with heavy actions' first rounds: what the class
               waits for before it sees an answer

The browser students' actions count in interaction only (their clock stops at the picture drawn).

    .venv/bin/python bench/load.py --scenario teacher-link own --sessions 30 --browsers 2 --seconds 60
    .venv/bin/python bench/load.py --scenario own --sessions 0 --browsers 1 --seconds 60    # one browser
    .venv/bin/python bench/load.py --scenario teacher-link --sessions 60 --proxy 2 --seconds 60
    .venv/bin/python bench/load.py --scenario own --sessions 15 --server-cpus 1            # a slower machine

Each server is warmed up by one session that opens the first page (the model loaded, the default
image's clean pass), then left until it is idle (:func:`settle`: the heavy-round helper processes,
models/offload.py, start with the model and import torch once; that start-up is printed, not counted
as any student's work). Server CPU counts the app processes and their helpers.

Without ``--proxy`` the server is the README's own start command (``streamlit run app.py`` with its
``.streamlit/config.toml``; only the port and address are added). The header prints the machine
(CPU model, cores, single-core GEMM GFLOP/s: bench/machine.py) so figures from machines of this kind,
which differ about 2x in speed, can be compared; ``--server-cpus N`` pins the app processes to N cores.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy.launch import free_port, wait_healthy  # noqa: E402
from machine import describe  # noqa: E402
from stclient import Session  # noqa: E402

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
PAGES = ["Mask_explorer", "Compare_methods", "CAM_shift", "Robustness_curve", "Theory_and_schedule"]
PAGE_TITLES = {"Mask_explorer": "Mask explorer", "Compare_methods": "Compare methods", "CAM_shift": "CAM shift",
               "Robustness_curve": "Robustness curve", "Theory_and_schedule": "Theory & schedule"}
IMAGES = ["coffee", "chelsea", "astronaut", "rocket"]
TEACHER_LINK = "Mask_explorer", "image=coffee&kp=0.9&b=7&seed=0"
TICK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ counters


def times(pid: int) -> tuple[float, float]:
    """(its own CPU seconds, its reaped children's) of one process: utime + stime, cutime + cstime
    from /proc/<pid>/stat (OSError once it is gone)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat."""
    return times(pid)[0]


def machine_busy_seconds() -> tuple[float, int]:
    """(busy CPU-seconds of the whole machine since boot, number of cores)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(v) for v in first]
    idle = ticks[3] + ticks[4]
    return (sum(ticks[:8]) - idle) / TICK, os.cpu_count() or 1


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def tree_cpu_seconds(pid: int, exclude: set[int]) -> float:
    """CPU of ``pid`` and its live descendants (not ``exclude``), children that exited included."""
    total = 0.0
    for p in [pid, *descendants(pid)]:
        if p in exclude:
            continue
        try:
            total += sum(times(p))
        except OSError:
            pass
    return total


def server_cpu_seconds(app_pids: list[int]) -> dict[int, float]:
    """CPU of each app process (its reaped children included) and of each of its live descendants (the
    helper processes that run heavy rounds, models/offload.py), by pid: the server is all of them."""
    out: dict[int, float] = {}
    for pid in app_pids:
        for p in [pid, *descendants(pid)]:
            try:
                out[p] = sum(times(p))
            except OSError:
                continue
    return out


def reaped_cpu_seconds(app_pids: list[int]) -> dict[int, float]:
    """CPU of each app process's reaped children (its cutime + cstime: helpers that ended), which
    :func:`server_cpu_seconds` counts under the app process: a split by process takes them out again."""
    out: dict[int, float] = {}
    for pid in app_pids:
        try:
            out[pid] = times(pid)[1]
        except OSError:
            continue
    return out


def cpu_between(before: dict[int, float], now: dict[int, float]) -> float:
    """CPU seconds between two snapshots of :func:`server_cpu_seconds` (a process new since counts whole)."""
    return sum(v - before.get(p, 0.0) for p, v in now.items())


def server_cpu_since(app_pids: list[int], before: dict[int, float]) -> float:
    """The server's CPU seconds since the snapshot ``before`` (:func:`server_cpu_seconds`)."""
    return cpu_between(before, server_cpu_seconds(app_pids))


def server_tree(server: Server) -> set[int]:
    """Every process of the server: the launched ones, the app processes and their descendants (helpers)."""
    pids = set(server.app_pids) | {p.pid for p in server.procs}
    for p in server.procs:
        pids |= set(descendants(p.pid))
    return pids


def server_peak_rss_mb(app_pids: list[int]) -> list[float]:
    """Peak RSS of each app process and of each of its helpers."""
    return [peak_rss_mb(p) for pid in app_pids for p in [pid, *descendants(pid)] if Path(f"/proc/{p}").exists()]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def quantiles(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    ordered = sorted(values)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


# ------------------------------------------------------------------ servers


@dataclass
class Server:
    url: str
    app_pids: list[int]
    procs: list[subprocess.Popen]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def pinned(command: list[str], server_cpus: int) -> list[str]:
    """``command`` on the first ``server_cpus`` cores (0: all), set before it starts a thread."""
    if not server_cpus:
        return command
    if server_cpus > (os.cpu_count() or 1):
        raise SystemExit(f"--server-cpus {server_cpus}: this machine has {os.cpu_count()} cores")
    return ["taskset", "-c", f"0-{server_cpus - 1}", *command]


def start_server(proxy: int, server_cpus: int = 0, job_trace: Path | None = None) -> Server:
    """(0) the README's own start command, one app process: ``streamlit run app.py`` with its
    .streamlit/config.toml, only where to listen added; or deploy/launch.py with ``proxy`` app
    processes behind nginx. ``server_cpus``: the server pinned to that many cores (taskset).
    ``job_trace``: the heavy pool writes one line per round there (models/jobs.py)."""
    env = {**os.environ, "DROPBLOCK_LAB_OFFLINE": os.environ.get("DROPBLOCK_LAB_OFFLINE", "1")}
    if job_trace is not None:
        env["DROPBLOCK_LAB_JOB_TRACE"] = str(job_trace)
    port = free_port()
    if not proxy:
        app = subprocess.Popen(
            pinned([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                    "--server.address", "127.0.0.1", "--server.headless", "true"], server_cpus),
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(port, app)
        except RuntimeError:
            app.kill()
            raise
        return Server(f"http://127.0.0.1:{port}", [app.pid], [app])
    command = pinned([sys.executable, str(ROOT / "deploy" / "launch.py"), "--processes", str(proxy),
                      "--port", str(port), "--pid-file", str(Path(tempfile.mkdtemp()) / "apps.pids")], server_cpus)
    launcher = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
    pids: list[int] = []
    for line in launcher.stdout:  # the launcher prints "app pid=… port=…" lines, then "ready …"
        if line.startswith("app pid="):
            pids.append(int(line.split()[1].split("=")[1]))
        if line.startswith("ready"):
            break
    else:
        raise RuntimeError("the launcher did not start")
    return Server(f"http://127.0.0.1:{port}", pids, [launcher])


# ------------------------------------------------------------------ students


@dataclass
class Stats:
    started: int = 0
    served: int = 0
    first: list[float] = field(default_factory=list)
    proto: list[float] = field(default_factory=list)
    proto_heavy: list[float] = field(default_factory=list)  # actions landing on the robustness curve page
    light: list[float] = field(default_factory=list)  # protocol actions whose run showed no heavy marker
    heavy_first: list[float] = field(default_factory=list)  # heavy actions: -> first round shown
    heavy_final: list[float] = field(default_factory=list)  # heavy actions: -> final or load-limited result
    heavy_rounds: int = 0  # heavy actions whose view showed rounds (an "N of M samples" marker)
    heavy_busy: int = 0  # heavy actions whose view stopped early: "the server is busy"
    browser: list[float] = field(default_factory=list)
    browser_slider: list[float] = field(default_factory=list)
    runs: int = 0  # script runs asked for (first renders + actions)
    errors: list[str] = field(default_factory=list)
    t0: float = 0.0  # the scenario's start (perf_counter)
    # every action: (seconds since the start when taken, page it lands on, what, seconds taken)
    actions: list[tuple[float, str, str, float]] = field(default_factory=list)

    def action(self, started: float, page: str, what: str, seconds: float) -> None:
        self.actions.append((started - self.t0, page, what, seconds))

    def classify(self, result) -> None:
        """A protocol action by its heavy markers (bench/stclient.py): light, or heavy's first round
        and final (or load-limited) result."""
        if not result.heavy:
            self.light.append(result.seconds)
            return
        self.heavy_first.append(result.first_round_s)
        self.heavy_final.append(result.final_s)
        self.heavy_rounds += any(m.kind == "samples" for m in result.marks)
        self.heavy_busy += any(m.kind == "busy" for m in result.marks)

    def slowest(self, share: float = 0.05) -> str:
        """Where the slowest ``share`` of actions happened: by page, by action, by time into the run."""
        ranked = sorted(self.actions, key=lambda a: a[3], reverse=True)[:max(1, round(share * len(self.actions)))]
        if not self.actions:
            return "no actions"
        count = lambda items: ", ".join(f"{k} {v}" for k, v in sorted(  # noqa: E731
            {k: items.count(k) for k in set(items)}.items(), key=lambda kv: -kv[1]))
        return (f"{len(ranked)} slowest ({ranked[-1][3]:.2f}-{ranked[0][3]:.2f} s): by page {count([a[1] for a in ranked])}; "
                f"by action {count([a[2] for a in ranked])}; "
                f"taken at {', '.join(f'{a[0]:.0f}' for a in sorted(ranked))} s into the run")


class Plan:
    """One student's seeded choices: the link, then actions until the deadline."""

    def __init__(self, scenario: str, i: int, seed: int) -> None:
        self.rng = random.Random(f"{seed}/{scenario}/{i}")
        self.scenario, self.i = scenario, i
        start = i % len(PAGES)
        self.unvisited = PAGES[start:] + PAGES[:start]
        if scenario == "teacher-link":
            self.page, self.query = TEACHER_LINK
        else:
            self.page = PAGES[0]
            self.query = (f"image={IMAGES[i % 4]}&kp={self.rng.choice([0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])}"
                          f"&b={self.rng.randint(1, 15)}&seed={1000 * (i + 1)}")
        self.unvisited.remove(self.page)
        self.current = self.page
        self.seed = 0 if scenario == "teacher-link" else 1000 * (i + 1)

    def pause(self) -> float:
        return self.rng.uniform(3.0, 8.0)

    def action(self, seconds_left: float) -> tuple[str, object]:
        """("page", url path) or (widget label, value)."""
        expected_left = max(1.0, seconds_left / 5.5)
        if self.unvisited and (self.rng.random() < 0.25 or len(self.unvisited) >= expected_left):
            page = self.unvisited.pop(0)
            self.current = page
            return "page", page
        kind = self.rng.choice(["keep_prob", "block_size", "Seed", "page"])
        if kind == "page":
            page = self.rng.choice([p for p in PAGES if p != self.current])
            if page in self.unvisited:  # visited now: never "first visited" again later, when it may be
                self.unvisited.remove(page)  # the page the student is on (a click that changes nothing)
            self.current = page
            return "page", page
        shared = self.scenario == "teacher-link"
        if kind == "keep_prob":
            return kind, self.rng.choice([0.8, 0.85, 0.9] if shared else [round(0.05 * k, 2) for k in range(10, 20)])
        if kind == "block_size":
            return kind, self.rng.choice([3, 5, 7] if shared else list(range(1, 16)))
        self.seed = self.rng.choice([0, 1, 2]) if shared else self.seed + 1
        return kind, self.seed


async def protocol_student(plan: Plan, url: str, start_at: float, deadline: float, stats: Stats) -> None:
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    session = Session(url, timeout=max(30.0, deadline - time.perf_counter() + 60))
    stats.started += 1
    try:
        stats.runs += 1
        result = await session.open(plan.page, plan.query)
        if result.errors:
            stats.errors += [f"protocol {plan.i}: {e}" for e in result.errors]
            return
        stats.served += 1
        stats.first.append(result.seconds)
        while True:
            await asyncio.sleep(plan.pause())
            if time.perf_counter() >= deadline:
                break
            what, value = plan.action(deadline - time.perf_counter())
            stats.runs += 1
            taken = time.perf_counter()
            result = await (session.goto(value) if what == "page" else session.move(what, value))
            stats.proto.append(result.seconds)
            stats.action(taken, plan.current, what, result.seconds)
            if plan.current == "Robustness_curve":
                stats.proto_heavy.append(result.seconds)
            stats.classify(result)
            stats.errors += [f"protocol {plan.i}: {e}" for e in result.errors]
    except Exception as err:  # noqa: BLE001 -- counted and reported, the run goes on
        stats.errors.append(f"protocol {plan.i}: {type(err).__name__} on {plan.current}: {str(err)[:120]}")
    finally:
        await session.close()


# What a student sees of the main area: every visible picture's address (pictures are <img> in
# st.image, and the tiles of a tile grid, ui/render.py show_mask_grid, whose addresses are inline
# data: URIs), the charts and the text (parts hidden by CSS are not counted). An action is done when
# this has changed, no run is in progress, and every visible picture is loaded and drawn (for a
# grid: its new tiles decoded). A move that changes nothing visible (the curve page ignores the
# sidebar's keep_prob and block_size) is done when the address has changed (the app writes every
# setting into the URL) and no run is in progress.
PICTURE_IMGS = """[...document.querySelectorAll(
  '[data-testid="stMain"] :is([data-testid="stImage"] img, .dbl-tiles img)')].filter(i => i.getClientRects().length)"""
SEEN = """() => { const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return [location.href, null];
  const imgs = %s;
  const charts = main.querySelectorAll('[data-testid="stVegaLiteChart"]').length;
  return [location.href, imgs.map(i => i.src).join(' ') + '|' + charts + '|' + main.innerText]; }""" % PICTURE_IMGS
DRAWN = """(arg) => {
  const [old, byUrl] = arg || [null, false];
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return false;
  const imgs = %s;
  const charts = [...main.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  const seen = imgs.map(i => i.src).join(' ') + '|' + charts.length + '|' + main.innerText;
  const changed = !old || (byUrl ? location.href !== old[0] : seen !== old[1]);
  return imgs.length + charts.length > 0 && changed && imgs.every(i => i.complete && i.naturalWidth > 0)
    && charts.every(c => c.querySelector('canvas, svg'));
}""" % PICTURE_IMGS


# The slider probe times new masks drawn: only the visible pictures count (the grid's tiles
# included), not the address.
PICTURES = """() => %s.map(i => i.src).join(' ')""" % PICTURE_IMGS
PICTURES_DRAWN = """(old) => {
  if (document.querySelector('[data-testid="stStatusWidget"]')) return false;
  const imgs = %s;
  return imgs.length > 0 && imgs.map(i => i.src).join(' ') !== old && imgs.every(i => i.complete && i.naturalWidth > 0);
}""" % PICTURE_IMGS
# The mask grid's tiles alone: new masks drawn, whatever else the run is still doing.
TILES = """() => [...document.querySelectorAll('[data-testid="stMain"] .dbl-tiles img')]
  .filter(i => i.getClientRects().length).map(i => i.src).join(' ')"""
TILES_DRAWN = """(old) => {
  const imgs = [...document.querySelectorAll('[data-testid="stMain"] .dbl-tiles img')].filter(i => i.getClientRects().length);
  const done = imgs.length > 0 && imgs.map(i => i.src).join(' ') !== old && imgs.every(i => i.complete && i.naturalWidth > 0);
  // called in an animation frame (polling "raf"): the frame that shows them is painted when this
  // frame's rendering ends, and a task queued now runs right after that paint
  if (done && window.__dblTilesPainted === undefined) {
    window.__dblTilesPainted = null;
    setTimeout(() => { window.__dblTilesPainted = performance.now(); }, 0);
  }
  return done;
}"""
# In the page itself: the key press's own timestamp (the browser's input event), kept for the probe.
KEY_TIMESTAMPS = """document.addEventListener('keydown', e => { window.__dblKeyAt = e.timeStamp;
  window.__dblTilesPainted = undefined; }, true);"""
IN_PAGE_MASKS_MS = """async () => {
  while (!window.__dblTilesPainted) await new Promise(r => setTimeout(r, 5));
  return window.__dblTilesPainted - window.__dblKeyAt;
}"""


# A slider's value and range: Streamlit 1.67 draws an <input type="range">; earlier versions a
# div with aria-value* attributes.
SLIDER_VALUES = """e => ['valuenow', 'valuemin', 'valuemax'].map(
  (k, i) => parseFloat(e.getAttribute('aria-' + k) ?? [e.value, e.min, e.max][i]))"""


async def browser_student(plan: Plan, browser, url: str, start_at: float, deadline: float, stats: Stats) -> None:
    await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    stats.started += 1
    try:
        stats.runs += 1
        t0 = time.perf_counter()
        await page.goto(f"{url}/{plan.page}?{plan.query}", wait_until="domcontentloaded", timeout=300_000)
        await page.wait_for_function(DRAWN, arg=None, timeout=300_000)
        stats.served += 1
        stats.first.append(time.perf_counter() - t0)
        while True:
            await asyncio.sleep(plan.pause())
            if time.perf_counter() >= deadline:
                break
            what, value = plan.action(deadline - time.perf_counter())
            old = await page.evaluate(SEEN)
            stats.runs += 1
            t0 = time.perf_counter()
            if what == "page":
                await page.locator('[data-testid="stSidebarNav"] a', has_text=PAGE_TITLES[value]).first.click()
                await page.get_by_role("heading", name=PAGE_TITLES[value]).first.wait_for(timeout=300_000)
                if value == "Theory_and_schedule":  # its first picture may be the same as before
                    old = None
            elif what == "Seed":
                box = page.locator('input[aria-label="Seed"]')
                await box.fill(str(value))
                await box.press("Enter")
            else:  # one key press on the slider, as a student nudges it (away from its ends)
                # the sidebar's own slider: pages have sliders whose names contain "keep_prob" too
                thumb = page.locator('[data-testid="stSidebar"]').get_by_role("slider", name=what).first
                await thumb.focus()
                now, low, top = await thumb.evaluate(SLIDER_VALUES)
                left = now >= top or (now > low and plan.rng.random() < 0.5)
                await thumb.press("ArrowLeft" if left else "ArrowRight")
            unseen = what in ("keep_prob", "block_size") and plan.current == "Robustness_curve"
            await page.wait_for_function(DRAWN, arg=[old, unseen] if old else None, timeout=120_000)
            seconds = time.perf_counter() - t0
            stats.browser.append(seconds)
            stats.action(t0, plan.current, f"{what} (browser)", seconds)
            if what in ("keep_prob", "block_size") and plan.current == "Mask_explorer":
                stats.browser_slider.append(seconds)
            if await page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count():
                stats.errors.append(f"browser {plan.i}: error box shown")
    except Exception as err:  # noqa: BLE001
        doing = f" ({what} on {plan.current})" if "what" in locals() else ""
        stats.errors.append(f"browser {plan.i}{doing}: {type(err).__name__}: {str(err).splitlines()[0][:120]}"
                            f"; the page then: {await _page_state(page)}")
    finally:
        await context.close()


# What a page that did not settle was showing (for the error line): a run in progress, how many
# pictures and charts, which pictures failed to load, and the start of the main text.
PAGE_STATE = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return 'no main';
  const imgs = %s;
  const broken = imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src.split('/').pop());
  const loading = imgs.filter(i => !i.complete).length;
  const charts = [...main.querySelectorAll('[data-testid="stVegaLiteChart"]')];
  return `running=${!!document.querySelector('[data-testid="stStatusWidget"]')} pictures=${imgs.length} ` +
    `broken=${JSON.stringify(broken)} loading=${loading} charts=${charts.length} ` +
    `undrawn_charts=${charts.filter(c => !c.querySelector('canvas, svg')).length} ` +
    `text=${JSON.stringify(main.innerText.slice(0, 160))}`;
}""" % PICTURE_IMGS


def pool_summary(path: Path, start: int) -> str:
    """The heavy pool's rounds during the scenario (models/jobs.py's trace): first rounds' wait in
    the queue and run time, and how many refinement rounds ran."""
    if not path.exists():
        return "no rounds"
    with path.open() as f:
        f.seek(start)
        rows = [line.rstrip("\n").split("\t") for line in f if line.count("\t") == 9]
    firsts = [r for r in rows if r[1] == "1" or r[9] == "1"]  # the round published as the first, or a whole job's
    wait = quantiles([float(r[4]) - float(r[3]) for r in firsts if r[1] == "1"])
    run = quantiles([float(r[5]) - float(r[4]) for r in firsts if r[1] == "1"])
    refinements = sum(1 for r in rows if r[1] != "1" and r[9] != "1")
    return (f"{len(rows)} rounds; first rounds: queue wait p50 / p95 {wait[0]:.2f} / {wait[1]:.2f} s, run "
            f"{run[0]:.2f} / {run[1]:.2f} s; {refinements} refinement rounds")


async def _page_state(page) -> str:
    try:
        return await page.evaluate(PAGE_STATE)
    except Exception as err:  # noqa: BLE001
        return f"unreadable ({type(err).__name__})"


async def slider_probe(url: str, moves: int, app_pids: list[int] | None = None
                       ) -> tuple[list[float], list[float], list[float], float]:
    """One browser alone on the mask explorer: keep_prob and block_size nudged by key presses, 1 s
    apart. Each is timed from the key press to the new masks drawn (the grid's new tiles decoded
    and painted: the target's event) twice, by this process's clock around the automation's calls
    (which adds its own round trips to the browser, ~20-30 ms) and in the page (from the key event's
    timestamp to the end of the paint that shows them); and to the page settled (no run in
    progress, every picture, the CAMs included, new and drawn). The page draws the masks before it
    runs the rest of the network, so the first comes sooner. The last value is the server's CPU
    seconds over the moves alone (``app_pids`` given: from the page drawn to the last move settled;
    the page's first load, a new session's full render, is not a move)."""
    from playwright.async_api import async_playwright

    masks, in_page, settled = [], [], []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        await context.add_init_script(KEY_TIMESTAMPS)
        page = await context.new_page()
        await page.goto(f"{url}/Mask_explorer?image=chelsea&kp=0.6&b=5&seed=7", wait_until="domcontentloaded")
        await page.wait_for_function(DRAWN, arg=None, timeout=300_000)
        await asyncio.sleep(1.0)  # the first load's last messages and media requests
        cpu0 = server_cpu_seconds(app_pids) if app_pids else {}
        for k in range(moves):
            label = ("keep_prob", "block_size")[k % 2]
            key = "ArrowRight" if (k // 2) % 8 < 4 else "ArrowLeft"  # wander, never at a limit for long
            thumb = page.get_by_role("slider", name=label).first
            await thumb.focus()
            old_tiles, old = await page.evaluate(TILES), await page.evaluate(PICTURES)
            t0 = time.perf_counter()
            await thumb.press(key)
            await page.wait_for_function(TILES_DRAWN, arg=old_tiles, timeout=120_000)
            masks.append(time.perf_counter() - t0)
            await page.wait_for_function(PICTURES_DRAWN, arg=old, timeout=120_000)
            settled.append(time.perf_counter() - t0)
            in_page.append(await page.evaluate(IN_PAGE_MASKS_MS) / 1000)
            await asyncio.sleep(1.0)
        moves_cpu = server_cpu_since(app_pids, cpu0) if app_pids else float("nan")
        await browser.close()
    return masks, in_page, settled, moves_cpu


async def cpu_probe(url: str, pid_list: list[int], actions: int, seed: int) -> dict[str, list[float]]:
    """One protocol student alone (own scenario): the app's CPU for each action, by page."""
    plan = Plan("own", 999, seed)
    session = Session(url)
    per_page: dict[str, list[float]] = {}
    try:
        await session.open(plan.page, plan.query)
        for _ in range(actions):
            what, value = plan.action(60.0)
            await asyncio.sleep(0.3)  # let the last run's background work (websocket, media) finish
            cpu0 = server_cpu_seconds(pid_list)
            await (session.goto(value) if what == "page" else session.move(what, value))
            await asyncio.sleep(0.3)
            per_page.setdefault(plan.current, []).append(server_cpu_since(pid_list, cpu0))
    finally:
        await session.close()
    return per_page


async def run_scenario(url: str, scenario: str, sessions: int, browsers: int, seconds: float, ramp: float,
                       seed: int) -> Stats:
    t0 = time.perf_counter()
    stats = Stats(t0=t0)
    deadline = t0 + seconds
    total = sessions + browsers
    starts = sorted(random.Random(f"{seed}/ramp").uniform(0, ramp) for _ in range(total))
    tasks = [protocol_student(Plan(scenario, i, seed), url, t0 + starts[i], deadline, stats) for i in range(sessions)]
    if browsers:
        from playwright.async_api import async_playwright

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
            tasks += [browser_student(Plan(scenario, sessions + j, seed), browser, url,
                                      t0 + starts[sessions + j], deadline, stats) for j in range(browsers)]
            await asyncio.gather(*tasks)
            await browser.close()
    else:
        await asyncio.gather(*tasks)
    return stats


async def warm_up(url: str) -> None:
    session = Session(url)
    try:
        await session.open("", "")  # model load and the default image's clean pass, not measured
    finally:
        await session.close()


def settle(server: Server, quiet: float = 0.05, timeout: float = 90.0) -> str:
    """After the warm-up: wait until the server is idle (its processes together use less than
    ``quiet`` of a core over a second, at most ``timeout`` s), so that what it does once at start
    (the heavy-round helpers importing torch and receiving the model, models/offload.py) is not
    counted as any student's work. Returns what it waited for, to print."""
    start = time.perf_counter()
    before, t0 = server_cpu_seconds(server.app_pids), time.perf_counter()
    total = 0.0
    while time.perf_counter() - start < timeout:
        time.sleep(1.0)
        now, t1 = server_cpu_seconds(server.app_pids), time.perf_counter()
        used = cpu_between(before, now)
        total += used
        if used / (t1 - t0) < quiet:
            break
        before, t0 = now, t1
    helpers = sum(len(descendants(p)) for p in server.app_pids)
    return (f"server settled {time.perf_counter() - start:.1f} s after the first page ({total:.1f} s of its CPU "
            f"meanwhile; {helpers} heavy-round helper processes)")


@contextlib.contextmanager
def profiled(pid: int | None, rate: int):
    """py-spy (requirements-dev.txt) sampling the app process ``pid`` from outside while the block runs:
    every thread, script runs, heavy workers, the event loop. Yields a list that holds the profile's
    path afterwards (empty without ``pid``)."""
    out: list[Path] = []
    if pid is None:
        yield out
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    path = Path(tempfile.mkdtemp()) / "profile.txt"
    recorder = subprocess.Popen([spy, "record", "--pid", str(pid), "--format", "raw", "--rate", str(rate), "--threads",
                                 "--nonblocking", "-o", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield out
    finally:
        recorder.send_signal(2)  # SIGINT: py-spy writes the profile and exits
        recorder.wait(timeout=120)
        out.append(path)


def print_profile(out: list[Path], top: int = 12) -> None:
    """Where the server was busy: by kind of work (bench/profile_render.py's categories), then the
    functions with the most samples on the stack (inclusive) and at its top (self), busy samples only."""
    from profile_render import category

    kinds: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in out[0].read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit() or (kind := category(stack)) is None:
            continue
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        kinds[kind] += int(n)
        for frame in set(frames):
            inclusive[frame] += int(n)
        if frames:
            own[frames[-1]] += int(n)
    total = sum(kinds.values()) or 1
    print(f"  profile (py-spy, {total} busy samples): by kind of work")
    for name, n in kinds.most_common():
        print(f"    {name:<44}{100 * n / total:>5.0f}%")
    print("  profile: functions on the stack (inclusive)")
    for frame, n in inclusive.most_common(top):
        print(f"    {100 * n / total:>5.0f}%  {frame[:110]}")
    print("  profile: functions at the top of the stack (self)")
    for frame, n in own.most_common(top):
        print(f"    {100 * n / total:>5.0f}%  {frame[:110]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", nargs="*", choices=["teacher-link", "own"], default=["teacher-link", "own"])
    parser.add_argument("--sessions", type=int, default=30, help="protocol sessions (no browser)")
    parser.add_argument("--browsers", type=int, default=2, help="real Chromium sessions alongside")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each scenario's run")
    parser.add_argument("--ramp", type=float, default=5.0, help="students arrive spread over this many seconds")
    parser.add_argument("--proxy", type=int, default=0, metavar="N",
                        help="run N app processes behind nginx (deploy/launch.py) instead of one")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server-cpus", type=int, default=0, metavar="N",
                        help="pin the app processes to N cores (taskset): a slower machine on this one")
    parser.add_argument("--cpu-probe", type=int, default=0, metavar="ACTIONS",
                        help="also measure the server CPU of each of ACTIONS student actions, one session alone")
    parser.add_argument("--profile", type=int, default=0, metavar="RATE",
                        help="sample the app process with py-spy at RATE Hz during each scenario and print where "
                             "the server is busy (by kind of work and by function)")
    parser.add_argument("--slider-probe", type=int, default=0, metavar="MOVES",
                        help="also time MOVES slider moves of one browser alone (slider -> new masks drawn)")
    args = parser.parse_args()
    if args.browsers and shutil.which("chromium") is None:
        sys.exit("--browsers needs Debian's chromium (apt-get install chromium); use --browsers 0")
    os.environ.setdefault("TORCH_HOME", tempfile.mkdtemp())
    machine = describe()  # before any server runs: the machine's own speed, quiet
    gflops = float(machine.rsplit("gemm_gflops=", 1)[1])
    cpus = args.server_cpus or os.cpu_count()
    print(machine)
    print("server: " + ("the README's start command (streamlit run app.py, .streamlit/config.toml), only the port "
                        "and address added" if not args.proxy else f"deploy/launch.py, {args.proxy} app processes "
                        "behind nginx") + f", on {cpus} of {os.cpu_count()} cores")
    lines = []
    load_per: dict[str, float] = {}  # scenario -> server CPU ms per interaction
    app_per: dict[str, float] = {}  # scenario -> the app processes' own CPU ms per interaction (no helpers)
    for scenario in args.scenario:
        job_trace = Path(tempfile.mkdtemp()) / "rounds.tsv"
        server = start_server(args.proxy, args.server_cpus, job_trace)
        try:
            asyncio.run(warm_up(server.url))
            print(f"  ({settle(server)})")
            trace_from = job_trace.stat().st_size if job_trace.exists() else 0  # the warm-up's rounds left out
            server_cpu0 = server_cpu_seconds(server.app_pids)
            reaped0 = reaped_cpu_seconds(server.app_pids)
            machine0, cores = machine_busy_seconds()
            me = os.getpid()
            client0 = tree_cpu_seconds(me, server_tree(server))  # the app's helper processes too: server, not client
            wall0 = time.perf_counter()
            with profiled(server.app_pids[0] if args.profile else None, args.profile) as profile:
                stats = asyncio.run(run_scenario(server.url, scenario, args.sessions, args.browsers, args.seconds,
                                                 args.ramp, args.seed))
            wall = time.perf_counter() - wall0
            server_now = server_cpu_seconds(server.app_pids)
            server_cpu = cpu_between(server_cpu0, server_now)
            # the app processes' own CPU: a helper that ended (reaped) counts under its app process in
            # server_cpu_seconds; it is a helper's CPU here
            app_cpu = cpu_between({p: server_cpu0.get(p, 0.0) for p in server.app_pids},
                                  {p: v for p, v in server_now.items() if p in server.app_pids}) - \
                cpu_between(reaped0, reaped_cpu_seconds(server.app_pids))
            machine = machine_busy_seconds()[0] - machine0
            client = tree_cpu_seconds(me, server_tree(server)) - client0
            peaks = server_peak_rss_mb(server.app_pids)
        finally:
            server.stop()
        first, proto, brow, slider = (quantiles(stats.first), quantiles(stats.proto), quantiles(stats.browser),
                                      quantiles(stats.browser_slider))
        inter = quantiles(stats.proto + stats.browser)
        heavy = quantiles(stats.proto_heavy)
        light = quantiles([x for x in stats.proto if x not in stats.proto_heavy])
        by_marks, heavy_first, heavy_final = (quantiles(stats.light), quantiles(stats.heavy_first),
                                              quantiles(stats.heavy_final))
        answer = quantiles(stats.light + stats.heavy_first)
        per = 1000 * server_cpu / max(1, stats.runs)
        load_per[scenario] = per
        app_per[scenario] = 1000 * app_cpu / max(1, stats.runs)
        print(f"\n== scenario {scenario}: {args.sessions} protocol + {args.browsers} browser sessions, "
              f"{args.seconds:g} s, arrivals over {args.ramp:g} s, "
              f"{'one app process' if not args.proxy else f'{args.proxy} app processes behind nginx'}")
        print(f"  sessions started / served        {stats.started} / {stats.served}")
        print(f"  heavy pool                       {pool_summary(job_trace, trace_from)}")
        print(f"  first render p50 / p95           {first[0]:.2f} / {first[1]:.2f} s")
        print(f"  interaction, protocol p50 / p95  {proto[0]:.2f} / {proto[1]:.2f} s   ({len(stats.proto)} actions)")
        print(f"  interaction, browser p50 / p95   {brow[0]:.2f} / {brow[1]:.2f} s   ({len(stats.browser)} actions; "
              f"slider on the mask explorer: median {slider[0] * 1000:.0f} ms over {len(stats.browser_slider)})")
        print(f"    protocol, robustness curve page  {heavy[0]:.2f} / {heavy[1]:.2f} s   ({len(stats.proto_heavy)} actions; "
              f"heavy jobs queue there)")
        print(f"    protocol, the other pages        {light[0]:.2f} / {light[1]:.2f} s")
        print(f"  light actions p50 / p95          {by_marks[0]:.2f} / {by_marks[1]:.2f} s   ({len(stats.light)} "
              f"protocol actions whose page showed no heavy view's marker)")
        print(f"  heavy, first round p50 / p95     {heavy_first[0]:.2f} / {heavy_first[1]:.2f} s   "
              f"({len(stats.heavy_first)} actions; {stats.heavy_rounds} showed rounds, the others a progress bar)")
        print(f"  heavy, final p50 / p95           {heavy_final[0]:.2f} / {heavy_final[1]:.2f} s   "
              f"({stats.heavy_busy} stopped early: the server is busy)")
        print(f"  answer (light + first rounds)    {answer[0]:.2f} / {answer[1]:.2f} s")
        print(f"  slowest 5% of actions            {stats.slowest()}")
        print(f"  errors                           {len(stats.errors)}")
        for e in stats.errors[:8]:
            print(f"    {e}")
        print(f"  script runs asked for            {stats.runs}")
        print(f"  server CPU                       {server_cpu:.1f} s = {per:.0f} ms per interaction "
              f"(app processes {app_cpu:.1f} s, heavy-round helpers {server_cpu - app_cpu:.1f} s)")
        print(f"  app peak RSS                     {' + '.join(f'{p:.0f}' for p in peaks)} MB (app processes, "
              f"then their heavy-round helpers)")
        print(f"  CPU over {wall:.0f} s: machine busy {machine:.1f} of {wall * cores:.0f} core-s; server "
              f"{server_cpu:.1f}; clients (this process and its browsers) {client:.1f} = "
              f"{100 * client / max(machine, 1e-9):.0f}% of the busy machine")
        if profile:
            print_profile(profile)
        print(f"  sizing: at a 5 s pause one core serves about {5000 / max(per, 1e-9):.0f} students "
              f"({per:.0f} ms of server CPU per interaction)")
        lines.append(
            f"load: scenario={scenario} sessions={stats.started} served={stats.served} first_p95_s={first[1]:.2f} "
            f"interaction_p95_s={inter[1]:.2f} light_p95_s={by_marks[1]:.2f} heavy_first_p95_s={heavy_first[1]:.2f} "
            f"heavy_final_p95_s={heavy_final[1]:.2f} answer_p95_s={answer[1]:.2f} "
            f"errors={len(stats.errors)} server_cpu_ms_per_interaction={per:.0f} "
            f"peak_rss_mb={sum(peaks):.0f} gemm_gflops={gflops:.1f} server_cpus={cpus}")
    if args.cpu_probe:
        server = start_server(args.proxy, args.server_cpus)
        try:
            asyncio.run(warm_up(server.url))
            print(f"  ({settle(server)})")
            per_page = asyncio.run(cpu_probe(server.url, server.app_pids, args.cpu_probe, args.seed))
        finally:
            server.stop()
        every = [x for xs in per_page.values() for x in xs]
        med, p95 = quantiles(every)
        mean = sum(every) / max(1, len(every))
        print(f"\n== one protocol student alone (own parameters), {len(every)} actions: server CPU per interaction "
              f"median {1000 * med:.0f} ms, p95 {1000 * p95:.0f} ms, mean {1000 * mean:.0f} ms (each action measured "
              f"alone, to its view's final round)")
        if "own" in load_per:
            print(f"  own load's CPU per interaction ÷ this: {load_per['own'] / (1000 * med):.2f}x the median "
                  f"(the issue's ratio), {load_per['own'] / (1000 * mean):.2f}x the mean (the same statistic on both sides)")
            print(f"  the app processes alone under the own load (no heavy-round helpers): {app_per['own']:.0f} ms per "
                  f"interaction, {app_per['own'] / (1000 * med):.2f}x the alone median")
        for name, xs in sorted(per_page.items()):
            m, q = quantiles(xs)
            print(f"  {name:<22} median {1000 * m:>5.0f} ms  p95 {1000 * q:>5.0f} ms  ({len(xs)} actions)")
        lines.insert(0, f"cpu: actions={len(every)} median_ms={1000 * med:.0f} p95_ms={1000 * p95:.0f} "
                        f"mean_ms={1000 * mean:.0f} "
                        f"sessions_per_core_at_5s={5 / max(med, 1e-9):.0f}")
    if args.slider_probe:
        server = start_server(args.proxy, args.server_cpus)
        try:
            asyncio.run(warm_up(server.url))
            print(f"  ({settle(server)})")
            cpu0 = server_cpu_seconds(server.app_pids)
            times, in_page, settled, moves_cpu = asyncio.run(slider_probe(server.url, args.slider_probe,
                                                                         server.app_pids))
            cpu = server_cpu_since(server.app_pids, cpu0)
        finally:
            server.stop()
        med, p95 = quantiles(times)
        page_med, page_p95 = quantiles(in_page)
        whole, whole95 = quantiles(settled)
        per_move = 1000 * moves_cpu / max(1, len(times))
        first_load = 1000 * (cpu - moves_cpu)  # the page's first load and the session's end
        print(f"\n== one browser alone, {len(times)} slider moves on the mask explorer: slider -> new masks drawn "
              f"median {med * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (this process's clock, the automation's round "
              f"trips included); in the page, key event -> painted: median {page_med * 1000:.0f} ms, p95 "
              f"{page_p95 * 1000:.0f} ms; -> page settled (CAMs and top-5 too) median {whole * 1000:.0f} ms, p95 "
              f"{whole95 * 1000:.0f} ms; server CPU {per_move:.0f} ms per move (the page's first load and the "
              f"session's end besides: {first_load:.0f} ms, {first_load / max(1, len(times)):.0f} ms a move if "
              f"spread over the moves, as this line counted until the fourth round)")
        lines.insert(0, f"slider: moves={len(times)} median_ms={med * 1000:.0f} p95_ms={p95 * 1000:.0f} "
                        f"in_page_median_ms={page_med * 1000:.0f} in_page_p95_ms={page_p95 * 1000:.0f} "
                        f"settled_median_ms={whole * 1000:.0f} server_cpu_ms_per_move={per_move:.0f} "
                        f"first_load_cpu_ms={first_load:.0f}")
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
