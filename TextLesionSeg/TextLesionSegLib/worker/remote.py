"""The remote engine's client: the local worker's requests, sent to ``textlesionseg serve``.

Standard library only (``urllib``), so Slicer loads it without FastAPI, and Python 3.9-safe.
:class:`RemoteClient` has the local :class:`~.client.WorkerClient`'s interface (``submit``,
non-blocking ``poll``, ``cancel``, ``stop``, ``busy``, ``log_path``) and yields the same messages,
with ``result_path`` pointing to the result files it downloaded, so the run controller, the
command line and the Python API read a server's result exactly as a local one
(``protocol.load_result``). :func:`server_info` is the handshake behind Slicer's **Test
connection**.

The wire (docs/server.md); every call carries ``Authorization: Bearer TOKEN`` and
``X-TextLesionSeg-Version``::

    GET    /v1/version                  -> name, version, protocol, device, compute, models, queue, limits
    POST   /v1/jobs      JSON request   -> 202 {"job", "state", "position"}   (no image_path/output_dir/prior_path;
                                           a refine with a prior says "prior": true)
    PUT    /v1/jobs/JOB/image  NRRD     -> 202 {"state": "queued", "position"}   (awaiting_upload while a prior is due)
    PUT    /v1/jobs/JOB/prior  .npy     -> 202 {"state": "queued", "position"}   (a refine's current voxels, KJI)
    GET    /v1/jobs/JOB                 -> {"state", "position", "progress", "reply"}
    GET    /v1/jobs/JOB/result.json, /v1/jobs/JOB/result.npz
    DELETE /v1/jobs/JOB                 -> cancels the job (this one only), or releases its files

Every failure is one line with an exit code (``errors.ServerError``, 5, for the connection, the
token, a full queue, another version; the engine's own codes otherwise).
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import queue
import shutil
import ssl
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..errors import InputError, ServerError, TextLesionSegError
from .client import WorkerClient, drain

API = "/v1"
VERSION_HEADER = "X-TextLesionSeg-Version"
#: job states after which nothing more happens on the server
FINAL_STATES = ("done", "error", "cancelled")
#: request types the server runs as jobs; the others are answered here (see RemoteClient)
JOB_TYPES = ("segment", "find_lesions", "refine", "load")
MIN_TOKEN_CHARS = 16


def version_mismatch(client_version: str, server_version: str, url: str) -> str:
    """The one sentence a client of another version gets (never a raw HTTP error)."""
    return (f"This client is TextLesionSeg {client_version} but the server at {url} runs TextLesionSeg "
            f"{server_version}; install the same version on both.")


def read_token(path: str | os.PathLike) -> str:
    """The token in ``path`` (surrounding whitespace dropped); ``InputError`` when unusable."""
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InputError(f"{path}: token file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the token file: {exc}") from None
    if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
        raise InputError(f"{path}: the token must be one word of at least {MIN_TOKEN_CHARS} characters")
    return token


def check_url(url: str) -> str:
    """``url`` without a trailing slash; ``InputError`` unless it is an http(s) address."""
    parsed = urllib.parse.urlparse(str(url).strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"server address {str(url)!r} must look like http://HOST:PORT or https://HOST")
    return str(url).strip().rstrip("/")


class Connection:
    """One server address and token; every call's failure becomes one :class:`ServerError` line."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = check_url(url)
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, length: int | None = None,
             timeout: float | None = None, into: Path | None = None) -> Any:
        """``method path`` -> the decoded JSON answer (or, with ``into``, the body written there)."""
        headers = {"Authorization": f"Bearer {self.token}", VERSION_HEADER: __version__}
        if isinstance(body, dict):
            body = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif body is not None:
            headers["Content-Type"] = "application/octet-stream"
            headers["Content-Length"] = str(length)
        request = urllib.request.Request(self.url + API + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as answer:
                if into is not None:
                    with open(into, "wb") as f:
                        shutil.copyfileobj(answer, f, 1 << 20)
                    return into
                return json.loads(answer.read().decode("utf-8") or "{}")
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc, method, path) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(reason, ssl.SSLError):
                raise ServerError(f"the TLS connection to {self.url} failed ({getattr(reason, 'reason', None) or reason}): "
                                  "if the server's certificate comes from your own authority, install that CA "
                                  "certificate or name it in SSL_CERT_FILE") from None
            if isinstance(exc, ValueError):  # an answer that is not JSON
                raise ServerError(f"the server at {self.url} gave an unreadable answer to {method} {API}{path}; "
                                  "is this a TextLesionSeg server?") from None
            raise ServerError(f"cannot reach the TextLesionSeg server at {self.url} ({reason}); "
                              "is 'textlesionseg serve' running there and the port open?") from None

    def _refusal(self, exc: urllib.error.HTTPError, method: str, path: str) -> TextLesionSegError:
        """One line for an HTTP error: the server's own message, else what the status means."""
        try:
            answer = json.loads(exc.read().decode("utf-8"))
        except (ValueError, OSError):
            answer = None
        if isinstance(answer, dict) and answer.get("type") == "error" and answer.get("message"):
            if answer.get("reason") == "version":
                error: TextLesionSegError = ServerError(
                    version_mismatch(__version__, str(answer.get("server_version")), self.url))
            else:
                error = ServerError(str(answer["message"]))
            error.exit_code = int(answer.get("exit_code") or ServerError.exit_code)
            return error
        if exc.code in (502, 503, 504):
            return ServerError(f"the server at {self.url} answered HTTP {exc.code} ({exc.reason}), which comes from "
                               "a proxy in front of it: the TextLesionSeg server behind it is not running or not reachable")
        return ServerError(f"the server at {self.url} answered HTTP {exc.code} ({exc.reason}) to {method} {API}{path}, "
                           "which a TextLesionSeg server does not; check the address and port")


def server_info(url: str, token: str, timeout: float = 10.0) -> dict[str, Any]:
    """The handshake: the server's version, device, models, queue and limits (``ServerError`` when
    it cannot be reached, refuses the token or runs another version)."""
    connection = Connection(url, token, timeout)
    info = connection.call("GET", "/version")
    if not isinstance(info, dict) or info.get("name") != "textlesionseg":
        raise ServerError(f"{connection.url} does not answer as a TextLesionSeg server; check the address and port")
    if info.get("version") != __version__:
        raise ServerError(version_mismatch(__version__, str(info.get("version")), connection.url))
    return info


def describe_server(info: dict[str, Any]) -> str:
    """One line for Test connection: version, device, models and queue of a :func:`server_info`."""
    queue_ = info.get("queue") or {}
    models = ", ".join(info.get("models") or []) or "none"
    return (f"TextLesionSeg {info.get('version')} on {info.get('device')} "
            f"({(info.get('compute') or {}).get('message', 'device status unknown')}); models: {models}; "
            f"queue {queue_.get('waiting', 0)}/{queue_.get('depth', '?')} waiting, {queue_.get('running', 0)} running")


def _error_message(rid: Any, exc: BaseException) -> dict[str, Any]:
    from ..errors import classify

    failure = classify(exc)
    return {"type": "error", "id": rid, "message": failure.message, "exit_code": failure.exit_code}


class RemoteClient:
    """A :class:`~.client.WorkerClient` look-alike whose engine runs on a server.

    Each request runs in a background thread (upload, polling the job, download), so
    :meth:`poll` never blocks; :meth:`cancel` cancels the server's job (this client's only) and
    ends the request at once with exit code 130, as the local worker does.
    """

    def __init__(self, url: str, token: str, log_path: str | Path | None = None, poll_interval: float = 0.2,
                 timeout: float = 30.0) -> None:
        self.connection = Connection(url, token, timeout)
        self.poll_interval = poll_interval
        self.log_path = Path(log_path) if log_path else Path(tempfile.gettempdir()) / f"textlesionseg-remote-{os.getpid()}.log"
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._current: str | None = None
        self._pending: list[dict[str, Any]] = []
        self._cancel = threading.Event()
        self._job: dict[str, str] = {}
        self._ids = itertools.count(1)

    @property
    def busy(self) -> bool:
        """True while a request is in flight."""
        return self._current is not None

    @property
    def running(self) -> bool:
        """The engine is the server's: always there as far as this client knows."""
        return True

    def submit(self, request: dict[str, Any]) -> str:
        """Start a request in the background; returns its id."""
        if self.busy:
            raise RuntimeError("the server client is busy with another request; cancel it or wait")
        rid = str(request.get("id") or f"r{next(self._ids)}")
        self._queue, self._cancel, self._job = queue.Queue(), threading.Event(), {}
        self._current = rid
        threading.Thread(target=self._run, args=({**request, "id": rid}, self._queue, self._cancel, self._job),
                         daemon=True, name="textlesionseg-remote").start()
        return rid

    def _run(self, request: dict[str, Any], out: "queue.Queue[dict[str, Any]]", cancel: threading.Event,
             job: dict[str, str]) -> None:
        try:
            final = self._exchange(request, out.put, cancel, job)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes one error message
            final = _error_message(request["id"], exc)
            self._log(f"{request.get('type')} {request['id']}: {final['message']}")
        if cancel.is_set() and job.get("id"):
            self._release(job["id"])  # cancelled before cancel() knew the job: it goes now
        elif final is not None:
            out.put(final)

    def _exchange(self, request: dict[str, Any], emit: Callable[[dict[str, Any]], None], cancel: threading.Event,
                  job: dict[str, str]) -> dict[str, Any] | None:
        rid, kind = request["id"], request.get("type")
        if kind == "status":
            info = server_info(self.connection.url, self.connection.token, self.connection.timeout)
            return {"type": "status", "id": rid, "compute": info.get("compute"), "server": info,
                    "loaded_models": info.get("loaded_models", [])}
        if kind not in JOB_TYPES:  # unload/shutdown: the server's models are shared, not this client's
            return {"type": "status", "id": rid, "remote": True}
        body = {k: v for k, v in request.items() if k not in ("image_path", "output_dir", "prior_path")}
        if request.get("prior_path"):
            body["prior"] = True  # the server names its own file for it
        job["id"] = self.connection.call("POST", "/jobs", body)["job"]
        uploads = (("image", "image_path", "Sending the image to the server"),
                   ("prior", "prior_path", "Sending the segment's current voxels to the server"))
        for route, key, stage in uploads:
            if request.get(key):
                emit({"type": "progress", "id": rid, "stage": stage, "fraction": None})
                path = Path(request[key])
                with open(path, "rb") as f:
                    self.connection.call("PUT", f"/jobs/{job['id']}/{route}", f, path.stat().st_size, timeout=600)
        last = None
        while not cancel.is_set():
            state = self.connection.call("GET", f"/jobs/{job['id']}")
            shown = self._progress(rid, state)
            if shown != last and shown is not None:
                emit(shown)
                last = shown
            if state.get("state") in FINAL_STATES:
                return self._collect(request, state, job["id"])
            time.sleep(self.poll_interval)
        return None

    @staticmethod
    def _progress(rid: str, state: dict[str, Any]) -> dict[str, Any] | None:
        if state.get("state") == "queued":
            ahead = int(state.get("position") or 0)
            return {"type": "progress", "id": rid, "fraction": None,
                    "stage": f"Waiting for the server ({ahead} job(s) ahead)" if ahead else "Waiting for the server"}
        progress = state.get("progress")
        return {"type": "progress", "id": rid, **progress} if isinstance(progress, dict) else None

    def _collect(self, request: dict[str, Any], state: dict[str, Any], job_id: str) -> dict[str, Any]:
        """The final message; a result's files are downloaded beside where the worker puts them."""
        reply = dict(state.get("reply") or {"type": "error", "message": "the server's job ended without an answer",
                                             "exit_code": 1})
        reply["id"] = request["id"]
        try:
            if reply.get("type") == "result":
                folder = Path(request.get("output_dir") or tempfile.mkdtemp(prefix="textlesionseg-result-"))
                folder.mkdir(parents=True, exist_ok=True)
                stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(request["id"]))
                target = folder / f"{stem}.json"
                npz = self.connection.call("GET", f"/jobs/{job_id}/result.npz", into=folder / f".{stem}.npz.part")
                doc = self.connection.call("GET", f"/jobs/{job_id}/result.json", into=folder / f".{stem}.json.part")
                os.replace(npz, target.with_suffix(".npz"))
                os.replace(doc, target)  # the JSON last: a reader never finds it without its arrays
                reply["result_path"] = str(target.resolve())
        finally:
            self._release(job_id)
        return reply

    def _release(self, job_id: str) -> None:
        try:
            self.connection.call("DELETE", f"/jobs/{job_id}", timeout=5)
        except TextLesionSegError as exc:  # the server drops it after its time-to-live anyway
            self._log(f"releasing job {job_id}: {exc}")

    def poll(self) -> list[dict[str, Any]]:
        """Messages since the last call (non-blocking); a final message ends the request."""
        messages, self._pending = self._pending, []
        for message in drain(self._queue):
            if message.get("type") in ("result", "error", "status") and message.get("id") == self._current:
                self._current = None
            messages.append(message)
        return messages

    # the local client's blocking helpers work unchanged on poll/busy/submit
    wait = WorkerClient.wait
    request = WorkerClient.request

    def cancel(self) -> None:
        """Cancel this client's job on the server (other clients' jobs run on); ends at once with 130."""
        rid, job = self._current, self._job
        self._cancel.set()
        if job.get("id"):
            threading.Thread(target=self._release, args=(job["id"],), daemon=True).start()
        self._current, self._queue = None, queue.Queue()
        if rid is not None:
            self._pending.append({"type": "error", "id": rid, "message": "cancelled; nothing was changed",
                                  "exit_code": 130, "cancelled": True})

    def stop(self, timeout: float = 5.0) -> None:
        """Nothing runs here: cancel the request in flight, if any (the server keeps its models)."""
        if self.busy:
            self.cancel()

    def _log(self, line: str) -> None:
        try:
            with open(self.log_path, "a", encoding="utf-8") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {self.connection.url} {line}\n")
        except OSError:
            pass

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of this client's log."""
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8").strip().splitlines()[-lines:])
        except OSError:
            return ""

