"""Which engine runs the panel's requests: the local worker or a server (``textlesionseg serve``).

Qt-free, so the panel stays thin and this is tested without Slicer: :class:`EngineChoice` checks
the choice and makes the run controller's client factory (a local ``WorkerClient`` or a
``RemoteClient``, which yield the same messages); :func:`test_connection` is the panel's
**Test connection** button. Standard library only (no FastAPI, no torch).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError, TextLesionSegError

ENGINES = ("local", "server")


@dataclass(frozen=True)
class EngineChoice:
    """``local`` (a worker process on this computer) or ``server`` (``url`` with the token in ``token_file``)."""

    kind: str = "local"
    url: str = ""
    token_file: str = ""

    def check(self) -> None:
        """``InputError`` naming what is missing or wrong (nothing is contacted)."""
        from .remote import check_url, read_token

        if self.kind not in ENGINES:
            raise InputError(f"unknown engine {self.kind!r} (known: {', '.join(ENGINES)})")
        if self.kind == "server":
            if not self.url.strip():
                raise InputError("type the server's address (http://HOST:PORT or https://HOST)")
            check_url(self.url)
            if not self.token_file.strip():
                raise InputError("choose the file holding the server's token")
            read_token(self.token_file)

    def client_factory(self, python_executable: str = sys.executable) -> Callable[[], Any]:
        """What the run controller calls to make its client (checked first: ``InputError``)."""
        self.check()
        if self.kind == "local":
            from .client import WorkerClient

            return lambda: WorkerClient(python_executable=python_executable)
        from .remote import RemoteClient, read_token

        url, token = self.url, read_token(self.token_file)
        return lambda: RemoteClient(url, token)


def test_connection(url: str, token_file: str) -> tuple[bool, str, list[str]]:
    """(ok, one line, the server's model names): its version, device, models and queue, or why it
    cannot be used (then no models)."""
    from .remote import describe_server, read_token, server_info

    try:
        EngineChoice("server", url, token_file).check()
        info = server_info(url, read_token(token_file))
    except TextLesionSegError as exc:
        return False, str(exc), []
    return True, f"Connected: {describe_server(info)}", [str(name) for name in info.get("models") or []]
