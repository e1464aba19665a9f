"""The machine's facts that make timings from different machines comparable.

Machines of this project's kind differ about 2x in CPU speed, so every bench prints the single-core
fp32 GEMM rate (a 1024x1024 matmul, one torch thread: the kind of work the network's convolutions
are), the CPU model and the core count; ``.ci/run`` prints them before the tests, so a failure
names the machine it happened on.

    .venv/bin/python bench/machine.py
    machine: cpu="…" cores=2 gemm_gflops=61.8
"""

from __future__ import annotations

import os
import platform
import time


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what the platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gemm_gflops(size: int = 1024, seconds: float = 0.5) -> float:
    """Single-core fp32 GEMM rate in GFLOP/s: the best of repeated ``size``² matmuls over about
    ``seconds`` (the best, not the mean: a neighbour's burst should not make the machine look slow)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(size, size, generator=gen)
        b = torch.randn(size, size, generator=gen)
        a @ b  # warm-up: first-call allocations and kernel selection
        best, deadline = float("inf"), time.perf_counter() + seconds
        while True:
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
            if time.perf_counter() > deadline:
                break
    finally:
        torch.set_num_threads(threads)
    return 2 * size**3 / best / 1e9


def describe() -> str:
    """One machine-readable line: CPU model, cores this process may use, GEMM GFLOP/s."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f'machine: cpu="{cpu_model()}" cores={cores} gemm_gflops={gemm_gflops():.1f}'


if __name__ == "__main__":
    print(describe())
