"""Helpers for the watch/monitor tests: writers in other processes, polling until a condition."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import ROOT

WRITER = ROOT / "tests" / "watch_writer.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def start_writer(run_dir: Path, *args: str) -> subprocess.Popen:
    """Start ``tests/watch_writer.py RUN_DIR ARGS`` in another process."""
    return subprocess.Popen([sys.executable, str(WRITER), str(run_dir), *args], env=ENV, cwd=ROOT)


def start_watch(*args: str, **kwargs) -> subprocess.Popen:
    """Start ``python3 -m tbreport watch ARGS`` with pipes for stdout and stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", "tbreport", "watch", *args],
        env=ENV,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def wait_for(condition: Callable[[], bool], *, timeout: float = 20.0, every: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(every)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)
