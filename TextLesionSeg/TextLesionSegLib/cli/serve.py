"""``textlesionseg serve``: the remote engine for Slicer workstations and scripts (docs/server.md).

Examples::

    textlesionseg serve --token-file token.txt --create-token          # loopback, port 8765
    textlesionseg serve --host 0.0.0.0 --port 8765 --token-file token.txt --device cuda --preload lsms-demo
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..core.settings import SETTINGS as _S
from ..core.settings import cli_type


def _positive(kind: type) -> Any:
    """An argparse type: a number of ``kind`` above 0."""

    def check(text: str) -> Any:
        """``text`` as a number above 0, or argparse's one-line refusal."""
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value
    return check


def register(subparsers: Any) -> None:
    """Add the ``serve`` sub-command."""
    p = subparsers.add_parser("serve", help="run the engine as a server for Slicer workstations (token required)",
                              description="Serve the engine over HTTP. Binds to 127.0.0.1 unless --host says "
                              "otherwise; every request must carry the token. Exit codes: 0 stopped, 2 bad option.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    p.add_argument("--token-file", type=Path, required=True, metavar="FILE", help="file holding the shared token")
    p.add_argument("--create-token", action="store_true", help="write a random token into --token-file if it is absent")
    p.add_argument("--device", default="auto", type=cli_type("device"), help=_S["device"].cli_help())
    p.add_argument("--preload", metavar="MODEL", help="load this model before accepting requests")
    p.add_argument("--queue-depth", type=_positive(int), default=4, help="jobs that may wait behind the running one (default 4)")
    p.add_argument("--max-upload-mb", type=_positive(float), default=1024.0, help="largest image upload in MiB (default 1024)")
    p.add_argument("--max-image-mvoxels", type=_positive(float), default=400.0,
                   help="largest image in millions of voxels (default 400)")
    p.add_argument("--job-timeout", type=_positive(float), default=600.0, help="longest run of one job in seconds (default 600)")
    p.add_argument("--work-dir", type=Path, metavar="DIR", help="where jobs' images and results wait, in a fresh "
                   "folder of the server's own that is deleted at exit (default: the temporary folder)")
    p.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve HTTPS with this certificate (chain) instead of "
                   "behind a TLS proxy; needs --tls-key")
    p.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until stopped."""
    from ..server.main import serve

    if (args.tls_cert is None) != (args.tls_key is None):
        from ..errors import InputError

        raise InputError("--tls-cert and --tls-key go together")
    tls = None if args.tls_cert is None else (args.tls_cert, args.tls_key)
    return serve(args.host, args.port, args.token_file, args.create_token, args.preload, tls, device=args.device,
                 queue_depth=args.queue_depth, max_upload_bytes=int(args.max_upload_mb * 2**20),
                 max_voxels=int(args.max_image_mvoxels * 1e6), job_timeout_s=float(args.job_timeout),
                 work_dir=args.work_dir)
