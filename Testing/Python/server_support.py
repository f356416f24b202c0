"""A real ``textlesionseg serve`` for the tests: a subprocess on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from TextLesionSegLib.errors import ServerError
from TextLesionSegLib.worker.client import PACKAGE_PARENT
from TextLesionSegLib.worker.remote import server_info

TIMEOUT = 120  # generous: the 2 shared CPU cores may be busy


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(folder: Path, registry: Path, token_file: Path, *options: str,
                 scheme: str = "http") -> tuple[subprocess.Popen, str]:
    """``textlesionseg serve`` in a subprocess on a free loopback port; waits until it answers."""
    port = free_port()
    env = {**os.environ, "TEXTLESIONSEG_EXTRA_REGISTRY": str(registry), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")) if p)}
    log = open(folder / f"server-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "TextLesionSegLib.cli", "serve", "--port", str(port),
                             "--token-file", str(token_file), "--device", "cpu", *options],
                            stdout=log, stderr=log, env=env)
    url, token = f"{scheme}://127.0.0.1:{port}", token_file.read_text().strip()
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            server_info(url, token)
            return proc, url
        except ServerError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError((folder / f"server-{port}.log").read_text())
            time.sleep(0.3)
