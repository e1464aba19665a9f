"""Run DropBlock Lab for a class: N app processes behind nginx, on this machine.

Each app process is ``streamlit run app.py`` on its own loopback port, with its torch threads set
(``--threads``, default 1: sessions run in parallel, one intra-op thread each, so N processes on
N cores do not oversubscribe) and idle OpenMP threads told not to spin. The launcher waits until
each answers ``/_stcore/health``, then runs nginx (``daemon off``) with its own prefix, config, pid
and logs in a temporary directory, from deploy/nginx.conf.template: websocket upgrade headers and
sticky sessions keyed on a cookie. It prints one ``app pid=… port=…`` line per process and
``ready <url>``, then waits; Ctrl-C or SIGTERM stops nginx and every app process.

    python deploy/launch.py --processes 2 --port 8080            # then open http://127.0.0.1:8080
    python deploy/launch.py --processes 0 --port 8501            # one app process, no proxy
    python deploy/launch.py --processes 4 --port 80 --address 0.0.0.0   # a real classroom server

nginx comes from Debian (``apt-get install nginx``); ``--nginx`` names another binary.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("nginx.conf.template")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(threads: int) -> dict[str, str]:
    """The environment of one app process: torch threads fixed, idle OpenMP threads asleep, one
    heavy-round helper process (models/offload.py; one per core when a single app process serves) unless
    ``DROPBLOCK_LAB_HELPERS`` says otherwise: N app processes on N cores, each with its helper."""
    return {
        **os.environ,
        "DROPBLOCK_LAB_HELPERS": os.environ.get("DROPBLOCK_LAB_HELPERS", "1"),
        "DROPBLOCK_LAB_TORCH_THREADS": str(threads),
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OMP_WAIT_POLICY": "PASSIVE",
        "KMP_BLOCKTIME": "0",
    }


def start_app(port: int, threads: int, address: str = "127.0.0.1", log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 -- lives as long as the process
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.address", address,
         "--server.headless", "true"],  # the rest from .streamlit/config.toml, as the README's command
        cwd=ROOT, env=app_env(threads), stdout=out, stderr=subprocess.STDOUT,
    )


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app process on port {port} exited with {proc.returncode}")
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"app process on port {port} did not answer /_stcore/health in {timeout:.0f} s")


def nginx_config(prefix: Path, listen: str, upstream_ports: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;" for p in upstream_ports)
    # nginx started by root drops its workers to "nobody", which cannot write this private prefix;
    # as root (a container, a test) keep root, otherwise run as the invoking user (README: non-root).
    user_line = "user root;" if os.geteuid() == 0 else ""
    text = TEMPLATE.read_text()
    for name, value in (("prefix", str(prefix)), ("listen", listen), ("servers", servers), ("user_line", user_line)):
        text = text.replace(f"@{name}@", value)
    return text


def start_nginx(prefix: Path, listen: str, upstream_ports: list[int], nginx: str) -> subprocess.Popen:
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "logs"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, listen, upstream_ports))
    return subprocess.Popen([nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nginx did not listen")


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="app processes (0: one app on --port, no nginx)")
    parser.add_argument("--port", type=int, default=8080, help="the port students open")
    parser.add_argument("--address", default="127.0.0.1", help="where nginx (or the single app) listens")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads per app process")
    parser.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    parser.add_argument("--pid-file", type=Path, help="also write the app processes' pids here")
    parser.add_argument("--log-dir", type=Path, help="write each app's output here (default: discarded)")
    args = parser.parse_args()

    procs: list[subprocess.Popen] = []
    prefix: Path | None = None
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if args.processes == 0:
            ports = [args.port]
            procs.append(start_app(args.port, args.threads, args.address,
                                   args.log_dir / "app-0.log" if args.log_dir else None))
        else:
            ports = [free_port() for _ in range(args.processes)]
            procs += [start_app(p, args.threads, log=args.log_dir / f"app-{i}.log" if args.log_dir else None)
                      for i, p in enumerate(ports)]
        for port, proc in zip(ports, procs):
            wait_healthy(port, proc)
            print(f"app pid={proc.pid} port={port}", flush=True)
        if args.pid_file:
            args.pid_file.write_text("\n".join(str(p.pid) for p in procs) + "\n")
        if args.processes:
            prefix = Path(tempfile.mkdtemp(prefix="dropblock-nginx-"))
            listen = f"{args.address}:{args.port}"
            nginx = start_nginx(prefix, listen, ports, args.nginx)
            procs.append(nginx)
            wait_port(args.port, nginx)
            print(f"nginx pid={nginx.pid} prefix={prefix}", flush=True)
        print(f"ready http://{args.address}:{args.port}", flush=True)
        while all(p.poll() is None for p in procs[-1:]):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop(procs[::-1])
        if prefix is not None:
            shutil.rmtree(prefix, ignore_errors=True)


if __name__ == "__main__":
    main()
