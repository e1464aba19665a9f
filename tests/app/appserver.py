"""The real app server for tests that drive it (a browser, the websocket protocol, an audit hook).

Started as the README starts it (``streamlit run app.py``, its configuration from
``.streamlit/config.toml``), offline with an empty torch hub (the EfficientNet-Lite0 fallback, as on
CI), with only where to listen added, plus whatever a test adds (``args``, ``env``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.launch import free_port, wait_healthy

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class AppServer:
    url: str
    pid: int
    log: Path


@contextlib.contextmanager
def app_server(tmp_path_factory, *args: str, env: dict[str, str] | None = None, timeout: float = 120.0):
    """Start the app, wait (generously) until it answers ``/_stcore/health``, stop it afterwards."""
    port = free_port()
    environ = {**os.environ, "DROPBLOCK_LAB_OFFLINE": "1", "TORCH_HOME": str(tmp_path_factory.mktemp("torch")),
               **(env or {})}
    environ.pop("DROPBLOCK_LAB_WEIGHTS", None)
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", *args],
            cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            wait_healthy(port, proc, timeout)
        except RuntimeError as err:
            pytest.fail(f"{err}:\n{log.read_text()}")
        yield AppServer(f"http://127.0.0.1:{port}", proc.pid, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
