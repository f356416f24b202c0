"""Start the remote engine: configuration checks, the start-up lines, uvicorn.

Binds to loopback (127.0.0.1) unless told otherwise, and says which in its first line, with
the device, the models, the queue depth and every limit.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..worker.remote import MIN_TOKEN_CHARS, read_token
from .jobs import JobQueue, ServerConfig

log = logging.getLogger("TextLesionSegLib.server")


def create_token(path: Path) -> bool:
    """Write a fresh random token into ``path`` (owner-only) unless it exists; True when written."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return True


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(host: str, port: int) -> None:
    """``InputError`` when ``host:port`` cannot be listened on (in use, not this machine's), before
    any model loads."""
    import socket

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def engine_info(state: Any, device: str) -> dict[str, Any]:
    """Device, compute status, models and engine counters of this server (for /v1/version)."""
    from ..models.registry import list_models
    from ..worker.server import compute_status

    for _ in range(3):  # the engine thread may load a model while this reads the list
        try:
            status = state.status()
            break
        except RuntimeError:
            continue
    else:
        status = {"loaded_models": [], "requests_done": None}
    return {"device": device, "compute": compute_status(), "models": [e.name for e in list_models()],
            "loaded_models": status["loaded_models"], "requests_done": status["requests_done"]}


def build(config: ServerConfig, preload: str | None = None) -> tuple[Any, JobQueue]:
    """The app and its started job queue over a fresh ``WorkerState`` (the local worker's engine)."""
    from ..models import registry
    from ..worker.server import WorkerState, start_warm_up
    from .app import create_app

    config.device = registry.resolve_device(config.device)  # InputError for a device this machine lacks
    start_warm_up()
    state = WorkerState()
    if preload:
        state.model(preload, config.device, lambda stage, fraction=None: None)
    queue = JobQueue(config, state.handle)
    queue.start()
    return create_app(queue, lambda: engine_info(state, config.device)), queue


def serve(host: str, port: int, token_file: Path, make_token: bool = False, preload: str | None = None,
          tls: tuple[Path, Path] | None = None, **limits: Any) -> int:
    """Run the server until Ctrl+C / SIGTERM; returns the exit code. ``tls``: (certificate, key)
    PEM files to serve HTTPS itself (else plain HTTP, for loopback or behind a TLS proxy)."""
    try:
        import uvicorn
    except ImportError:
        raise InputError("the server needs FastAPI and uvicorn: pip install 'textlesionseg[server]'") from None
    token_file = Path(token_file)
    if make_token and create_token(token_file):
        print(f"textlesionseg serve: wrote a new token to {token_file}; give this file to each client", file=sys.stderr)
    if not token_file.exists():
        raise InputError(f"{token_file}: token file not found (add --create-token to write a random one)")
    config = ServerConfig(token=read_token(token_file), **limits)
    check_address(host, port)
    for path in tls or ():
        if not Path(path).is_file():
            raise InputError(f"{path}: TLS file not found")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s textlesionseg-serve %(levelname)s %(message)s")
    app, queue = build(config, preload)
    where = ("loopback only: other machines cannot connect (use --host 0.0.0.0 behind a TLS proxy to serve them)"
             if is_loopback(host) else "reachable from other machines over TLS" if tls
             else "REACHABLE FROM OTHER MACHINES: put it behind TLS (docs/server.md)")
    scheme = "https" if tls else "http"
    print(f"textlesionseg serve: listening on {scheme}://{host}:{port} ({where}); device {config.device}; "
          f"queue depth {config.queue_depth}; limits: upload {config.max_upload_bytes / 2**20:.0f} MiB, "
          f"image {config.max_voxels:,} voxels, job {config.job_timeout_s:g} s; "
          f"token from {token_file} ({MIN_TOKEN_CHARS}+ characters)", file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5, access_log=False,
                    ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None)
    finally:
        queue.close()
    return 0
