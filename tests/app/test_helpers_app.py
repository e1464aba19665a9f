"""The real server with its heavy-round helpers (models/offload.py), as the README starts it: they
start with the model, a heavy page's rounds run there (their CPU, not the app's), the page shows
its rounds without an error, and stopping the server leaves no helper behind."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from tests import polling

from .conftest import ROOT

WAIT = 120.0  # generous: a helper imports torch on a machine that may be 2x slower and busy


def helpers_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                cmd = (entry / "cmdline").read_bytes()
            except (OSError, IndexError):
                continue
            if ppid == pid and b"models.offload" in cmd:
                out.append(int(entry.name))
    return out


def cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def until(condition, timeout: float = WAIT) -> bool:
    return polling.until(condition, timeout, every=0.2)


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_heavy_rounds_run_in_the_helpers_and_leave_with_the_server(tmp_path_factory):
    from .appserver import app_server

    sys.path.insert(0, str(ROOT / "bench"))
    from stclient import Session

    with app_server(tmp_path_factory, env={"DROPBLOCK_LAB_HELPERS": "2"}) as server:
        async def visit(page: str, query: str):
            session = Session(server.url)
            try:
                return await session.open(page, query)
            finally:
                await session.close()

        home = asyncio.run(visit("", ""))
        assert not home.errors, home.errors
        assert until(lambda: len(helpers_of(server.pid)) == 2)  # started with the model
        helpers = helpers_of(server.pid)

        def settled() -> bool:  # ready: done importing (idle for half a second)
            before = sum(cpu(p) for p in helpers)
            time.sleep(0.5)
            return sum(cpu(p) for p in helpers) - before < 0.02

        assert until(settled)
        before = sum(cpu(p) for p in helpers)
        result = asyncio.run(visit("CAM_shift", "seed=4321"))
        assert not result.errors, result.errors
        assert any(" of " in t and "samples" in t for t in result.texts), result.texts[-10:]  # its rounds' caption
        assert until(lambda: sum(cpu(p) for p in helpers) - before > 0.05, 60)  # computed there
        assert helpers_of(server.pid) == helpers  # none died, none added
    assert "Traceback" not in server.log.read_text()
    assert until(lambda: all(gone(p) for p in helpers), 30)
