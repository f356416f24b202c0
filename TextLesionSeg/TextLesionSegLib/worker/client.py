"""Talk to the worker process without blocking: submit, poll from a timer, cancel, stop.

No Qt here: Slicer's Logic calls :meth:`WorkerClient.poll` from a ``QTimer`` (every ~100 ms),
a script calls :meth:`WorkerClient.wait`. A reader thread moves the worker's stdout lines into
a queue, so ``poll`` never blocks. The worker's stderr goes to a log file (``log_path``).

Failure behaviour:
* ``cancel()`` kills the worker's whole process tree (the launcher *and* Python) and returns
  within 2 s; ``poll`` then yields an error with exit code 130. The next ``submit`` starts a
  fresh worker (models load again).
* A worker that dies (crash, killed by the OOM killer) while a request runs yields an error
  message naming its exit code and log file, never a hang; the next ``submit`` restarts it.
* ``stop()`` asks the worker to exit (which frees its CPU and GPU memory) and kills it if it
  does not within a few seconds.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Iterator

from .protocol import PROTOCOL_VERSION, decode, encode

#: the folder holding the ``TextLesionSegLib`` package, put on the worker's PYTHONPATH
PACKAGE_PARENT = Path(__file__).resolve().parents[2]
FINAL_TYPES = ("result", "error", "status")
_EXITED = "_exited"


def kill_process_tree(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and every process it started (it was started in its own group/session)."""
    if proc.poll() is not None:
        return
    try:
        if sys.platform.startswith("win"):
            subprocess.run(["taskkill", "/F", "/T", "/PID", str(proc.pid)], capture_output=True, timeout=5)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        proc.kill()
    except OSError:
        pass


#: Windows process-creation flags, spelled out so the options can be built (and tested) anywhere
CREATE_NEW_PROCESS_GROUP = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x00000200)
CREATE_NO_WINDOW = getattr(subprocess, "CREATE_NO_WINDOW", 0x08000000)


def popen_options(platform: str) -> dict[str, Any]:
    """Platform-specific ``Popen`` options of the worker (``platform`` as in ``sys.platform``).

    Windows: no console window pops up next to Slicer (PythonSlicer is a console program), and a
    new process group. Elsewhere: a new session, so ``cancel`` can kill the worker's whole tree.
    """
    if platform.startswith("win"):
        return {"creationflags": CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW}
    return {"start_new_session": True}


def drain(messages: "queue.Queue[dict[str, Any]]") -> Iterator[dict[str, Any]]:
    """Every message waiting in ``messages``, without blocking."""
    while True:
        try:
            yield messages.get_nowait()
        except queue.Empty:
            return


def _read_lines(proc: subprocess.Popen, out: "queue.Queue[dict[str, Any]]") -> None:
    """Reader thread: every stdout line of one worker process becomes a message in ``out``."""
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            out.put(decode(line))
        except ValueError:
            out.put({"type": "_noise", "line": line.rstrip()})  # not protocol: logged, ignored
    out.put({"type": _EXITED, "returncode": proc.wait()})


class WorkerClient:
    """One persistent worker process and the request it is running (one at a time).

    Args:
        python_executable: interpreter that runs ``-m TextLesionSegLib.worker`` (Slicer: PythonSlicer).
        env: extra environment variables for the worker (e.g. ``TEXTLESIONSEG_CACHE``).
        log_path: file receiving the worker's log (stderr); default in the temp folder.
    """

    def __init__(self, python_executable: str = sys.executable, env: dict[str, str] | None = None,
                 log_path: str | Path | None = None) -> None:
        self.python_executable = python_executable
        self.env = dict(env or {})
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"textlesionseg-worker-{os.getpid()}.log"
        self._proc: subprocess.Popen | None = None
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._current: str | None = None  # id of the request in flight
        self._pending: list[dict[str, Any]] = []  # messages made by the client itself
        self._ids = itertools.count(1)
        self._stopping = False
        self.starts = 0  # how many worker processes this client has started

    # ---- state -----------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True while a request is in flight."""
        return self._current is not None

    @property
    def running(self) -> bool:
        """True while a worker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the worker (the launcher's, under Slicer), or None."""
        return self._proc.pid if self.running else None

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the worker process if it is not running (it loads nothing until asked)."""
        if self.running:
            return
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        try:
            self._proc = subprocess.Popen(
                [self.python_executable, "-m", "TextLesionSegLib.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=log, env=env, text=True, encoding="utf-8", bufsize=1,
                **popen_options(sys.platform),
            )
        finally:
            log.close()  # the child holds its own handle
        self._queue = queue.Queue()  # a fresh queue: nothing from an earlier process leaks in
        threading.Thread(target=_read_lines, args=(self._proc, self._queue), daemon=True,
                         name="textlesionseg-worker-reader").start()
        weakref.finalize(self, kill_process_tree, self._proc)
        self._stopping = False
        self.starts += 1

    def submit(self, request: dict[str, Any]) -> str:
        """Send a request (starting the worker if needed); returns its id. Never blocks on the work."""
        if self.busy:
            raise RuntimeError("the worker is busy with another request; cancel it or wait")
        self.start()
        rid = str(request.get("id") or f"r{next(self._ids)}")
        message = {"protocol": PROTOCOL_VERSION, **request, "id": rid}
        assert self._proc is not None and self._proc.stdin is not None
        self._current = rid
        try:
            self._proc.stdin.write(encode(message))
            self._proc.stdin.flush()
        except OSError:
            pass  # the process died: the reader thread reports it through poll()
        return rid

    def poll(self) -> list[dict[str, Any]]:
        """Messages received since the last call (non-blocking). Ends a request on result/error."""
        messages, self._pending = self._pending, []
        for message in drain(self._queue):
            kind = message.get("type")
            if kind in ("ready", "_noise"):
                continue
            if kind == _EXITED:
                if self._current is not None and not self._stopping:
                    messages.append(self._crash_message(message["returncode"]))
                continue
            if kind in FINAL_TYPES and message.get("id") == self._current:
                self._current = None
            messages.append(message)
        return messages

    def _crash_message(self, returncode: int) -> dict[str, Any]:
        rid, self._current = self._current, None
        return {
            "type": "error", "id": rid, "exit_code": 1, "crashed": True, "returncode": returncode,
            "message": f"the worker process stopped unexpectedly (exit code {returncode}) while running the request; "
                       f"the next run starts a fresh worker. Last log line: {self.log_tail(1) or '-'} (log: {self.log_path})",
        }

    def wait(self, timeout: float | None = None, interval: float = 0.05) -> list[dict[str, Any]]:
        """Block until the request in flight ends; returns every message it produced."""
        deadline = None if timeout is None else time.monotonic() + timeout
        messages = self.poll()
        while self.busy:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"worker request still running after {timeout} s")
            time.sleep(interval)
            messages += self.poll()
        return messages

    def request(self, request: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """Submit, wait, and return the final message (progress messages are dropped)."""
        rid = self.submit(request)
        finals = [m for m in self.wait(timeout) if m.get("id") == rid and m["type"] in FINAL_TYPES]
        return finals[-1]

    def cancel(self) -> None:
        """Kill the worker's process tree now; the request in flight ends with exit code 130."""
        proc, rid = self._proc, self._current
        self._stopping = True
        if proc is not None:
            kill_process_tree(proc)
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        self._proc, self._current = None, None
        self._queue = queue.Queue()  # late lines of the killed process are dropped
        if rid is not None:
            self._pending.append({"type": "error", "id": rid, "message": "cancelled; nothing was changed",
                                  "exit_code": 130, "cancelled": True})

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit (memory, GPU memory included, goes back); kill it if it lingers."""
        proc = self._proc
        if proc is None:
            return
        if self.busy:
            self.cancel()
            return
        self._stopping = True
        try:
            if proc.poll() is None and proc.stdin is not None:
                proc.stdin.write(encode({"protocol": PROTOCOL_VERSION, "type": "shutdown", "id": "shutdown"}))
                proc.stdin.flush()
                proc.stdin.close()
            proc.wait(timeout=timeout)
        except (OSError, subprocess.TimeoutExpired):
            kill_process_tree(proc)
        self._proc = None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the worker log (for error dialogs)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def run_request_sync(request: dict[str, Any], on_message: Any = None) -> dict[str, Any]:
    """Run ``request`` in this process (see ``server.run_request_sync``); imported lazily."""
    from .server import run_request_sync as run

    return run(request, on_message)


__all__ = ["WorkerClient", "run_request_sync", "kill_process_tree", "popen_options"]
