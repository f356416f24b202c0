"""The server's jobs: a bounded queue in front of the local worker's own request handler.

One engine thread runs one job at a time through ``worker.server.WorkerState.handle`` (the same
code, checks and replies as Slicer's local worker), so N clients share one device without
running out of its memory. Jobs wait in a queue of :attr:`ServerConfig.queue_depth` places; a
full queue is a clear "busy" refusal, never an unbounded pile.

A job is cancelled cooperatively: its progress callback raises ``CancelledError`` at the next
progress step (every sliding window), so a client's cancel stops its job and no other. The same
check enforces the time limit. Jobs whose client stopped asking are cancelled, finished jobs'
files are deleted once released or after :attr:`ServerConfig.result_ttl_s`. No FastAPI here.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import CancelledError, ServerError

log = logging.getLogger("TextLesionSegLib.server")
Handler = Callable[[dict[str, Any], Callable[[dict[str, Any]], None]], dict[str, Any]]


#: job folders are named ``textlesionseg-serve-<pid>-<random>``
FOLDER_PREFIX = "textlesionseg-serve-"


def remove_stale_job_folders(parent: Path) -> list[Path]:
    """Delete the job folders in ``parent`` of servers that are gone (killed: SIGKILL, power cut),
    so uploaded scans do not outlive a crash; a folder whose server still runs, or whose name is
    not exactly a server's, is left alone."""
    from ..models.registry_weights import process_alive

    removed = []
    for folder in parent.glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name[len(FOLDER_PREFIX):].split("-", 1)[0]
        if not (folder.is_dir() and pid.isdigit()) or int(pid) == os.getpid() or process_alive(int(pid)):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        log.info("removed %d job folder(s) left by servers that are gone", len(removed))
    return removed


@dataclass
class ServerConfig:
    """What ``textlesionseg serve`` was told (every limit is stated at start and in /v1/version)."""

    token: str
    device: str = "auto"
    queue_depth: int = 4  # jobs that may wait behind the running one
    max_upload_bytes: int = 1 << 30
    max_voxels: int = 400_000_000
    max_request_bytes: int = 1 << 20  # the JSON of one request
    job_timeout_s: float = 600.0  # one job's run time on the device
    upload_timeout_s: float = 300.0  # from accepting a job to its image having arrived
    abandon_s: float = 60.0  # a waiting or running job whose client has not asked for this long is cancelled
    result_ttl_s: float = 600.0  # a finished job's files are kept this long unless released
    work_dir: Path | None = None  # where the queue makes its own folder for the jobs' files (None: the temp folder)


@dataclass
class Job:
    """One client's request on the server."""

    id: str
    request: dict[str, Any]
    folder: Path
    state: str = "awaiting_upload"  # -> queued -> running -> done | error | cancelled
    progress: dict[str, Any] | None = None
    reply: dict[str, Any] | None = None
    result_path: Path | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    created: float = field(default_factory=time.monotonic)
    touched: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None
    uploads: list[str] = field(default_factory=list)  # files still due from the client, in order: image, prior
    grid: tuple[int, ...] | None = None  # the uploaded image's voxel grid, KJI (a prior must match it)
    stop_reason: str = ""  # why the server stopped it, when it did
    timed_out: bool = False
    abandoned: bool = False  # cancelled by its client or dropped as left behind: nobody will fetch it

    @property
    def final(self) -> bool:
        """True once nothing more happens to the job (done, error or cancelled)."""
        return self.state in ("done", "error", "cancelled")

    def public(self, position: int | None) -> dict[str, Any]:
        """What a client sees of its job (never a server path)."""
        reply = None if self.reply is None else {k: v for k, v in self.reply.items() if k != "result_path"}
        return {"job": self.id, "state": self.state, "position": position, "progress": self.progress, "reply": reply}


class JobQueue:
    """Jobs by id, the waiting line, and the engine thread that runs them with ``handler``."""

    def __init__(self, config: ServerConfig, handler: Handler) -> None:
        self.config = config
        self.handler = handler
        self.jobs: dict[str, Job] = {}
        self.waiting: deque[Job] = deque()
        self.running: Job | None = None
        self.accepted = 0  # jobs ever accepted (tests: a refused request does no work)
        self.finished: Counter[str] = Counter()  # jobs that ran, by how they ended: done, error, cancelled
        self._lock = threading.Condition()
        self._stop = False
        if config.work_dir is not None:
            Path(config.work_dir).mkdir(parents=True, exist_ok=True)
        # a fresh folder of its own inside it, the only one close() deletes: never anything of the admin's.
        # Its name carries the server's pid, so that the next server can delete what a killed one left.
        remove_stale_job_folders(Path(config.work_dir or tempfile.gettempdir()))
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=config.work_dir))
        self._thread = threading.Thread(target=self._engine, name="textlesionseg-engine", daemon=True)

    def start(self) -> None:
        """Start the engine thread."""
        self._thread.start()

    def close(self) -> None:
        """Stop taking jobs, cancel the running one, delete every job's files."""
        with self._lock:
            self._stop = True
            for job in self.jobs.values():
                job.cancel.set()
            self._lock.notify_all()
        if self._thread.ident is not None:  # started (close() of a queue that never ran still cleans up)
            self._thread.join(timeout=10)
        shutil.rmtree(self.folder, ignore_errors=True)

    # ---- what clients do ----------------------------------------------------------------------
    def create(self, request: dict[str, Any], needs_image: bool, needs_prior: bool = False) -> Job:
        """Accept a job (its image comes next when ``needs_image``, then a click's prior voxels when
        ``needs_prior``); ``ServerError`` when the queue is full."""
        with self._lock:
            holding = sum(1 for j in self.jobs.values() if j.state in ("awaiting_upload", "queued"))
            if holding >= self.config.queue_depth:
                running = "1 running" if self.running is not None else "none running"
                raise ServerError(f"the server is busy: its queue of {self.config.queue_depth} jobs is full "
                                  f"({running}); try again in a minute")
            job_id = secrets.token_urlsafe(18)  # unguessable: only the client that made it can cancel it
            folder = self.folder / job_id
            folder.mkdir()
            job = Job(job_id, request, folder, uploads=["image"] * needs_image + ["prior"] * needs_prior)
            self.jobs[job_id] = job
            self.accepted += 1
            if not job.uploads:
                self._enqueue(job)
            return job

    def uploaded(self, job: Job, what: str = "image") -> None:
        """One of the job's files (``image``, ``prior``) has arrived; with the last, the job joins
        the line (``ServerError`` when the job was dropped meanwhile: its upload outlasted
        :attr:`ServerConfig.upload_timeout_s`)."""
        with self._lock:
            if self.jobs.get(job.id) is not job:
                raise ServerError(f"the upload took longer than the server's limit of "
                                  f"{self.config.upload_timeout_s:g} s; try again, or crop the volume")
            if what in job.uploads:
                job.uploads.remove(what)
            if job.state == "awaiting_upload" and not job.uploads:
                self._enqueue(job)

    def _enqueue(self, job: Job) -> None:
        job.state = "queued"
        self.waiting.append(job)
        self._lock.notify_all()

    def get(self, job_id: str) -> Job | None:
        """The job (its client is still there: the job is not abandoned), or None."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is not None:
                job.touched = time.monotonic()
            return job

    def position(self, job: Job) -> int | None:
        """How many jobs run or wait ahead of a queued job (None once it runs)."""
        with self._lock:
            if job.state != "queued":
                return None
            ahead = next((n for n, j in enumerate(self.waiting) if j is job), 0)
            return ahead + (1 if self.running is not None else 0)

    def cancel(self, job_id: str) -> bool:
        """Cancel a job (a waiting one leaves the line; a running one stops at its next progress
        step) or, once it is final, delete its files. False for an unknown id."""
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return False
            if job.final or job.state in ("awaiting_upload", "queued"):
                self._drop(job, "cancelled by its client")
            else:
                job.stop_reason, job.abandoned = "cancelled by its client", True
                job.cancel.set()
            return True

    def _drop(self, job: Job, reason: str) -> None:
        """Remove a job that is not running (lock held)."""
        if job in self.waiting:
            self.waiting.remove(job)
        self.jobs.pop(job.id, None)
        if not job.final:
            job.state = "cancelled"
        shutil.rmtree(job.folder, ignore_errors=True)
        log.info("job %s dropped: %s", job.id[:8], reason)

    def stats(self) -> dict[str, Any]:
        """Depth, waiting, running and accepted counts."""
        with self._lock:
            waiting = sum(1 for j in self.jobs.values() if j.state in ("awaiting_upload", "queued"))
            return {"depth": self.config.queue_depth, "waiting": waiting, "running": int(self.running is not None),
                    "accepted": self.accepted, "finished": dict(self.finished)}

    # ---- the engine thread ----------------------------------------------------------------------
    def _engine(self) -> None:
        while True:
            with self._lock:
                while not self.waiting and not self._stop:
                    self._lock.wait(timeout=2.0)
                    self._sweep()
                if self._stop:
                    return
                job = self.waiting.popleft()
                self.running, job.state, job.started = job, "running", time.monotonic()
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 - the engine thread must outlive any one job
                log.exception("job %s: bookkeeping failed", job.id[:8])
                with self._lock:
                    job.reply = {"type": "error", "message": f"internal error on the server: {exc}", "exit_code": 1}
                    job.state = "error"
            with self._lock:
                self.running, job.ended = None, time.monotonic()
                self._sweep()

    def _run(self, job: Job) -> None:
        timeout = self.config.job_timeout_s

        def emit(message: dict[str, Any]) -> None:
            """The engine's progress: kept for the client; raises to stop a cancelled or overdue job."""
            job.progress = {"stage": message.get("stage"), "fraction": message.get("fraction")}
            now = time.monotonic()
            if not job.cancel.is_set() and now - (job.started or 0) > timeout:
                job.stop_reason, job.timed_out = f"the job ran longer than the server's limit of {timeout:g} s", True
                job.cancel.set()
            elif not job.cancel.is_set() and now - job.touched > self.config.abandon_s:
                job.stop_reason, job.abandoned = "its client stopped asking", True
                job.cancel.set()
            if job.cancel.is_set():
                raise CancelledError(job.stop_reason or "cancelled")

        started = time.perf_counter()
        reply = self.handler(job.request, emit)
        log.info("job %s %s: %s in %.1f s", job.id[:8], job.request.get("type"), reply.get("type"),
                 time.perf_counter() - started)
        if reply.get("type") == "result":
            job.result_path = Path(reply["result_path"])
        elif job.timed_out:
            reply = {**reply, "message": f"{job.stop_reason}; nothing was changed", "exit_code": ServerError.exit_code}
        with self._lock:
            job.reply = reply
            job.state = {"result": "done", "error": "error"}.get(str(reply.get("type")), "done")
            if reply.get("exit_code") == 130 and not job.timed_out:
                job.state = "cancelled"
            self.finished[job.state] += 1
            if job.abandoned:  # nobody will come for it
                self._drop(job, job.stop_reason)

    def _sweep(self) -> None:
        """Drop jobs whose upload never came, whose client went away, or whose result expired (lock held)."""
        now, cfg = time.monotonic(), self.config
        for job in list(self.jobs.values()):
            if job.state == "awaiting_upload" and now - job.created > cfg.upload_timeout_s:
                self._drop(job, "its image never arrived")
            elif job.state == "queued" and now - job.touched > cfg.abandon_s:
                self._drop(job, "its client stopped asking")
            elif job.final and now - (job.ended or job.created) > cfg.result_ttl_s:
                self._drop(job, "its result expired")
