"""The HTTP face of the remote engine (FastAPI): token, version, limits, jobs.

Every route checks the token first (constant-time, ``hmac.compare_digest``): no token, no work.
A client that says it is another version (``X-TextLesionSeg-Version``) is refused with both
versions, which the client turns into one sentence. Requests are the local worker's
(``worker.protocol.check_request`` checks them whole), except that a client never names a path
on the server: its image (and, for a click, the segment's current voxels) is uploaded, its result
downloaded. Every refusal is one JSON object
``{"type": "error", "reason", "message", "exit_code"}``; the wire is in ``worker.remote``.
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path
from typing import Any, Callable

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import InputError, ServerError, classify
from ..worker import protocol
from ..worker.remote import API, JOB_TYPES, VERSION_HEADER
from .jobs import Job, JobQueue

log = logging.getLogger("TextLesionSegLib.server")


class Refusal(Exception):
    """One refused call: HTTP status, a machine-readable reason, one line, an exit code."""

    def __init__(self, status: int, reason: str, message: str, exit_code: int = ServerError.exit_code,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status, self.reason, self.message, self.exit_code, self.extra = status, reason, message, exit_code, extra

    def response(self) -> JSONResponse:
        """The refusal as the JSON answer every client reads."""
        body = {"type": "error", "reason": self.reason, "message": self.message, "exit_code": self.exit_code, **self.extra}
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


def check_token(authorization: str | None, token: str) -> None:
    """Refuse a call without ``Authorization: Bearer <token>`` or with another token."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Refusal(401, "token", "the server needs its token (Authorization: Bearer ...); nothing was run")
    if not hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8")):
        raise Refusal(401, "token", "the server refused the token; check the token file; nothing was run")


#: an over-limit body up to this size is read to its end (and dropped) before the refusal, so the
#: client gets the one-line answer instead of a connection reset in the middle of its upload
DISCARD_MAX_BYTES = 64 << 20


async def read_limited(request: Request, limit: int, what: str, into: Path | None = None,
                       hint: str = "crop the volume to a region of interest") -> bytes:
    """The body, refused with 413 once it passes ``limit`` bytes (streamed, never held whole
    when ``into`` is given)."""
    declared = request.headers.get("content-length")
    shown = f"{limit / 2**20:.0f} MiB" if limit >= 2**20 else f"{limit:,} bytes"
    too_big = Refusal(413, "too_large", f"the {what} is larger than the server accepts ({shown}); {hint}",
                      InputError.exit_code)
    if declared is not None and declared.isdigit() and int(declared) > limit + DISCARD_MAX_BYTES:
        raise too_big
    size, chunks = 0, []
    sink = open(into, "wb") if into is not None else None
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit + DISCARD_MAX_BYTES:
                raise too_big
            if size > limit:
                continue  # over the limit: read on to the end, keep nothing
            if sink is not None:
                sink.write(chunk)
            else:
                chunks.append(chunk)
    finally:
        if sink is not None:
            sink.close()
    if size > limit:
        raise too_big
    return b"".join(chunks)


def image_grid(path: Path) -> tuple[int, ...]:
    """The voxel grid (KJI) of an uploaded image, from its header only; ``Refusal`` when it is no readable NRRD."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.SetImageIO("NrrdImageIO")
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise Refusal(400, "image", "the uploaded image is not a readable NRRD file", InputError.exit_code) from None
    return tuple(int(n) for n in reversed(reader.GetSize()))


def voxel_count(grid: tuple[int, ...]) -> int:
    """Voxels of a grid."""
    voxels = 1
    for n in grid:
        voxels *= n
    return voxels


#: a prior may hold up to 8 bytes a voxel (float64) plus the .npy header; more is no mask of the image
PRIOR_BYTES_PER_VOXEL, PRIOR_HEADER_BYTES = 8, 65536


def check_prior(path: Path, grid: tuple[int, ...]) -> None:
    """``Refusal`` unless ``path`` is a numeric ``.npy`` array (no pickles) on the image's voxel
    grid ``grid`` (KJI); only its header is read here, the worker reads the voxels."""
    import numpy as np

    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        raise Refusal(400, "prior", "the uploaded prior is not a readable .npy array (numpy.save of the segment's "
                      "voxels); nothing was run", InputError.exit_code) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise Refusal(400, "prior", "the uploaded prior must be an array of numbers (the segment's voxels, 0 or 1); "
                      "nothing was run", InputError.exit_code)
    if tuple(array.shape) != tuple(grid):
        raise Refusal(400, "prior", f"the uploaded prior has shape {tuple(array.shape)}, the image's voxel grid "
                      f"(K, J, I) is {tuple(grid)}: send the segment's voxels on the image's grid; nothing was run",
                      InputError.exit_code)


def create_app(queue: JobQueue, info: Callable[[], dict[str, Any]]) -> FastAPI:
    """The FastAPI application over ``queue``; ``info()`` gives the device, models and engine status."""
    config = queue.config
    app = FastAPI(title="TextLesionSeg remote engine", version=__version__, docs_url=None, redoc_url=None,
                  openapi_url=None)

    @app.exception_handler(Refusal)
    async def refused(request: Request, exc: Refusal) -> JSONResponse:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return Refusal(exc.status_code, "http", f"{request.method} {request.url.path}: {exc.detail}", 2).response()

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return Refusal(500, "internal", f"{classify(exc).message} (traceback in the server log)", 1).response()

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Any:
        """Token, then version, before any route runs (an unknown route too: nothing is revealed)."""
        try:
            check_token(request.headers.get("authorization"), config.token)
            theirs = request.headers.get(VERSION_HEADER)
            if theirs is not None and theirs != __version__:
                raise Refusal(409, "version", f"the client is TextLesionSeg {theirs}, the server {__version__}",
                              client_version=theirs, server_version=__version__)
        except Refusal as exc:
            return exc.response()
        return await call_next(request)

    @app.get(f"{API}/version")
    def version() -> dict[str, Any]:
        """The handshake: version, device, models, queue and limits."""
        return {"name": "textlesionseg", "version": __version__, "protocol": protocol.PROTOCOL_VERSION,
                **info(), "queue": queue.stats(),
                "limits": {"max_upload_bytes": config.max_upload_bytes, "max_voxels": config.max_voxels,
                           "job_timeout_s": config.job_timeout_s, "queue_depth": config.queue_depth}}

    @app.post(f"{API}/jobs", status_code=202)
    async def create_job(request: Request) -> dict[str, Any]:
        """Accept a worker request (checked whole) into the queue, or refuse it in one line."""
        body = await read_limited(request, config.max_request_bytes, "request")
        job_request = parse_request(body.decode("utf-8", errors="replace"), config.device)
        needs_image = job_request["type"] != "load"
        needs_prior = bool(job_request.pop("prior", False))
        if needs_image:  # where the uploads will be: checked like any worker request's paths
            job_request["image_path"] = "input.nrrd"
        if needs_prior:
            job_request["prior_path"] = "prior.npy"
        try:
            protocol.check_request(job_request)
        except InputError as exc:
            raise Refusal(400, "request", str(exc), InputError.exit_code) from None
        try:
            job = queue.create(job_request, needs_image, needs_prior)
        except ServerError as exc:
            raise Refusal(503, "busy", str(exc)) from None
        for key in ("image_path", "prior_path"):
            if key in job.request:
                job.request[key] = str(job.folder / job.request[key])
        job.request["output_dir"] = str(job.folder)
        return job.public(queue.position(job))

    @app.put(f"{API}/jobs/{{job_id}}/image", status_code=202)
    async def upload(job_id: str, request: Request) -> dict[str, Any]:
        """The job's image, streamed to disk within the limits; then the job joins the line."""
        job = awaiting(job_id, "image")
        path = Path(job.request["image_path"])
        try:
            await read_limited(request, config.max_upload_bytes, "image upload", into=path)
            grid = image_grid(path)
            voxels = voxel_count(grid)
            if voxels > config.max_voxels:
                raise Refusal(413, "too_large", f"the image has {voxels:,} voxels, more than the server's "
                              f"limit of {config.max_voxels:,}; crop it to a region of interest", InputError.exit_code)
        except Refusal:
            queue.cancel(job_id)  # nothing runs and nothing stays
            raise
        job.grid = grid
        return arrived(job, "image")

    @app.put(f"{API}/jobs/{{job_id}}/prior", status_code=202)
    async def upload_prior(job_id: str, request: Request) -> dict[str, Any]:
        """A click's prior: the segment's current voxels (``.npy``, on the image's grid, after the image)."""
        job = awaiting(job_id, "prior")
        if job.grid is None:
            raise Refusal(409, "state", "send the job's image before its prior", 2)
        path = Path(job.request["prior_path"])
        limit = min(config.max_upload_bytes, voxel_count(job.grid) * PRIOR_BYTES_PER_VOXEL + PRIOR_HEADER_BYTES)
        try:
            await read_limited(request, limit, "prior upload", into=path,
                               hint="send the segment's voxels on the image's grid (numpy.save of a uint8 array)")
            check_prior(path, job.grid)
        except Refusal:
            queue.cancel(job_id)  # nothing runs and nothing stays
            raise
        return arrived(job, "prior")

    @app.get(f"{API}/jobs/{{job_id}}")
    def job_state(job_id: str) -> dict[str, Any]:
        """State, place in the line, progress and, once final, the reply."""
        job = find(job_id)
        return job.public(queue.position(job))

    @app.get(f"{API}/jobs/{{job_id}}/result.{{kind}}")
    def result_file(job_id: str, kind: str) -> FileResponse:
        """``result.json`` or ``result.npz`` of a finished job."""
        job = find(job_id)
        if job.result_path is None or kind not in ("json", "npz"):
            raise Refusal(404, "result", "this job has no such result file", 2)
        return FileResponse(job.result_path.with_suffix(f".{kind}"), media_type="application/octet-stream")

    @app.delete(f"{API}/jobs/{{job_id}}")
    def cancel(job_id: str) -> dict[str, Any]:
        """Cancel this job (only this one), or release its files once finished."""
        if not queue.cancel(job_id):
            raise Refusal(404, "job", "no such job on this server (finished and released, or expired)", 2)
        return {"job": job_id, "cancelled": True}

    def awaiting(job_id: str, what: str) -> Job:
        """The job, waiting for its ``what`` upload, or a refusal."""
        job = find(job_id)
        if job.state != "awaiting_upload" or what not in job.uploads:
            raise Refusal(409, "state", f"this job is {job.state}, not waiting for its {what}", 2)
        return job

    def arrived(job: Job, what: str) -> dict[str, Any]:
        """The job once its ``what`` is in: it joins the line with its last upload."""
        try:
            queue.uploaded(job, what)
        except ServerError as exc:
            raise Refusal(408, "timeout", str(exc)) from None
        return job.public(queue.position(job))

    def find(job_id: str) -> Job:
        """The job, or a 404 refusal."""
        job = queue.get(job_id)
        if job is None:
            raise Refusal(404, "job", "no such job on this server (finished and released, or expired)", 2)
        return job

    return app


def parse_request(text: str, device: str) -> dict[str, Any]:
    """A client's request: a worker request the server may run; the device is the server's."""
    try:
        request = protocol.decode(text)
    except ValueError as exc:
        raise Refusal(400, "request", f"unreadable request: {exc}", InputError.exit_code) from None
    for key in ("image_path", "output_dir", "prior_path"):
        if key in request:
            raise Refusal(400, "request", f"a server request carries no '{key}': the image (and a click's prior, "
                          "announced by \"prior\": true) is uploaded and the result downloaded", InputError.exit_code)
    if not isinstance(request.get("prior", False), bool):
        raise Refusal(400, "request", "a request's 'prior' must be true (its prior voxels will be uploaded) or false",
                      InputError.exit_code)
    if request.get("prior") and request.get("type") != "refine":
        raise Refusal(400, "request", "only a refine request has a prior (the segment's current voxels)",
                      InputError.exit_code)
    kind = request.get("type")
    if kind not in JOB_TYPES:
        raise Refusal(400, "request", f"request type {json.dumps(kind)[:40]} is not served (served: "
                      f"{', '.join(JOB_TYPES)}; the status is GET {API}/version)", InputError.exit_code)
    if isinstance(request.get("settings", {}), dict):
        request["settings"] = {**(request.get("settings") or {}), "device": device}
    return request
