"""bench/load.py's server CPU split: a helper that ended and was reaped by its app process is a
helper's CPU, not the app process's (Linux /proc; the app process's cutime holds it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from load import cpu_between, reaped_cpu_seconds, server_cpu_seconds  # noqa: E402

# an "app process" that starts a "helper" burning about 0.5 s of CPU, reaps it, then sleeps
APP = """
import subprocess, sys, time
print("ready", flush=True)
sys.stdin.readline()
subprocess.run([sys.executable, "-c", "import time\\nt = time.process_time()\\nwhile time.process_time() - t < 0.5: pass"])
print("reaped", flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_reaped_helpers_cpu_is_the_helpers_not_the_app_processes():
    app = subprocess.Popen([sys.executable, "-c", APP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout.readline().strip() == "ready"
        before, reaped0 = server_cpu_seconds([app.pid]), reaped_cpu_seconds([app.pid])
        app.stdin.write("go\n")
        app.stdin.flush()
        assert app.stdout.readline().strip() == "reaped"
        now, reaped = server_cpu_seconds([app.pid]), reaped_cpu_seconds([app.pid])
        total = cpu_between(before, now)
        helpers = cpu_between(reaped0, reaped)
        own = cpu_between({app.pid: before[app.pid]}, {app.pid: now[app.pid]}) - helpers
        assert helpers >= 0.3  # the helper's half second, in the app process's reaped children
        assert own < 0.3 and total == pytest.approx(own + helpers)  # the app process itself only waited
    finally:
        app.kill()
        app.wait(10)
