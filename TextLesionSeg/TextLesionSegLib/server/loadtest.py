"""Bounded loopback load run of the remote engine, with the local worker as the peer.

    python -m TextLesionSegLib.server.loadtest                       # lsms-demo, 64^3 phantom, CPU
    python -m TextLesionSegLib.server.loadtest --model malenia-demo --clients 1 2 4 --per-level 8 --json out.json
    python -m TextLesionSegLib.server.loadtest --image ct.nrrd --per-level 4 --memory-requests 10

Starts ``textlesionseg serve`` on 127.0.0.1 (a free port, a fresh token; nothing else can
reach it), then: requests per minute and latency (median, max) with 1, 2 and 4 clients at once,
each sending ``--per-level`` requests in all; the server's resident memory (VmRSS) after one
warm-up request and after ``--memory-requests`` more; and the same request sent
``--per-level`` times to the local worker (``WorkerClient``), the peer, in the same run.
Everything is bounded: fixed request counts, a timeout per request, the server stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from ..worker.client import PACKAGE_PARENT, WorkerClient
from ..worker.remote import RemoteClient, server_info
from ..worker.server import process_rss_bytes

TIMEOUT = 600.0


def start_server(folder: Path, device: str) -> tuple[subprocess.Popen, str, str]:
    """``textlesionseg serve`` on 127.0.0.1; returns (process, url, token) once it answers."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_urlsafe(32)
    (folder / "token.txt").write_text(token, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")) if p)}
    log = open(folder / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "TextLesionSegLib.cli", "serve", "--port", str(port), "--device",
                             device, "--token-file", str(folder / "token.txt"), "--queue-depth", "8"],
                            stdout=log, stderr=log, env=env)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 300
    while True:
        try:
            server_info(url, token)
            return proc, url, token
        except Exception:  # noqa: BLE001 - not up yet
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the server did not start; see {folder / 'server.log'}") from None
            time.sleep(0.5)


def timed(client: Any, request: dict[str, Any]) -> float:
    """Seconds for one request, end to end (upload, queue, run, download); raises on an error reply."""
    started = time.perf_counter()
    final = client.request(dict(request), TIMEOUT)
    if final.get("type") != "result":
        raise RuntimeError(f"request failed: {final.get('message')}")
    for suffix in (".json", ".npz"):
        Path(final["result_path"]).with_suffix(suffix).unlink(missing_ok=True)
    return time.perf_counter() - started


def level(url: str, token: str, request: dict[str, Any], clients: int, total: int) -> dict[str, Any]:
    """``total`` requests shared by ``clients`` clients sending at once."""
    latencies: list[float] = []
    lock = threading.Lock()
    counts = [total // clients + (1 if n < total % clients else 0) for n in range(clients)]

    def run(n: int) -> None:
        """Client ``n``: its share of the requests, one after another."""
        client = RemoteClient(url, token, poll_interval=0.05)
        for _ in range(counts[n]):
            seconds = timed(client, {**request, "output_dir": f"{request['output_dir']}/c{n}"})
            with lock:
                latencies.append(seconds)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if len(latencies) != total:
        raise RuntimeError(f"{total - len(latencies)} of {total} requests with {clients} clients failed")
    return {"clients": clients, "requests": total, "wall_s": round(wall, 2),
            "requests_per_minute": round(60.0 * total / wall, 1),
            "latency_median_s": round(statistics.median(latencies), 2), "latency_max_s": round(max(latencies), 2)}


def main(argv: list[str] | None = None) -> int:
    """Run the load test; prints a table and the summary (JSON with ``--json``)."""
    parser = argparse.ArgumentParser(prog="python -m TextLesionSegLib.server.loadtest", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lsms-demo")
    parser.add_argument("--image", type=Path, help="a CT to send (default: a CT-like phantom of --size voxels per side)")
    parser.add_argument("--size", type=int, default=64, help="phantom edge in voxels")
    parser.add_argument("--text", default="round solid nodule in the right lung")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--per-level", type=int, default=8, help="requests per client count (and for the peer)")
    parser.add_argument("--memory-requests", type=int, default=50)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from ..worker.testing import write_phantom

    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # so the server is stopped too

    folder = Path(tempfile.mkdtemp(prefix="textlesionseg-loadtest-"))
    image = args.image or write_phantom(folder / "phantom.nrrd", size=args.size, lesion_radius_vox=args.size / 8)
    request = {"type": "segment", "image_path": str(image), "texts": [args.text], "model": args.model,
               "settings": {"device": args.device}, "output_dir": str(folder / "results")}
    summary: dict[str, Any] = {"model": args.model, "device": args.device,
                               "image": str(args.image) if args.image else f"CT-like phantom {args.size}^3",
                               "cpu_count": os.cpu_count(), "python": sys.version.split()[0]}
    proc, url, token = start_server(folder, args.device)
    try:
        warm = RemoteClient(url, token, poll_interval=0.05)
        timed(warm, request)  # loads the model
        rss_before = process_rss_bytes(proc.pid)
        summary["levels"] = [level(url, token, request, n, args.per_level) for n in args.clients]
        memory_seconds, samples = [], {}
        for n in range(1, args.memory_requests + 1):
            memory_seconds.append(timed(warm, request))
            if n % 10 == 0 or n == args.memory_requests:  # plateau or trend: every 10th request
                samples[n] = round((process_rss_bytes(proc.pid) or 0) / 2**20, 1)
        summary["server_rss_mb"] = {"after_warm_up": round((rss_before or 0) / 2**20, 1),
                                    f"after_{args.memory_requests}_more": samples[args.memory_requests],
                                    "after_n_more": samples,
                                    "median_s_of_those": round(statistics.median(memory_seconds), 2)}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    worker = WorkerClient(log_path=folder / "worker.log")
    try:
        timed(worker, request)  # loads the model, as the server's warm-up did
        local = [timed(worker, request) for _ in range(args.per_level)]
    finally:
        worker.stop()
    summary["local_worker"] = {"requests": len(local), "requests_per_minute": round(60.0 * len(local) / sum(local), 1),
                               "latency_median_s": round(statistics.median(local), 2)}
    peer = summary["local_worker"]
    for row in summary["levels"]:
        row["latency_vs_local"] = round(row["latency_median_s"] / peer["latency_median_s"], 2)
        row["throughput_vs_local"] = round(row["requests_per_minute"] / peer["requests_per_minute"], 2)
        print(f"{row['clients']} client(s): {row['requests_per_minute']:7.1f} req/min, latency median "
              f"{row['latency_median_s']} s (max {row['latency_max_s']}), {row['latency_vs_local']}x the local worker's "
              f"latency, {row['throughput_vs_local']}x its throughput")
    print(f"local worker: {peer['requests_per_minute']} req/min, latency median {peer['latency_median_s']} s")
    print(f"server RSS: {summary['server_rss_mb']}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
