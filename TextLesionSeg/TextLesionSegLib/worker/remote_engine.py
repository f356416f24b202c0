"""The Python API's and the command line's door to a remote engine (``textlesionseg serve``).

:class:`RemoteEngine` wraps :class:`~.remote.RemoteClient` into one blocking call that takes an
``Image`` and returns a ``Result``, so ``pipeline.run.segment(..., server=...)`` and
``textlesionseg segment --server`` give what a local run gives. Standard library only here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from ..errors import InputError
from .remote import RemoteClient, check_url, read_token, server_info


#: exit code of an engine error message -> the error the Python API raises for it
_ERRORS = {2: "InputError", 3: "ModelError", 4: "InsufficientMemoryError", 5: "ServerError", 130: "CancelledError"}


def raise_for(message: dict[str, Any]) -> None:
    """Raise the engine's ``error`` message as the error of its exit code (one line)."""
    from .. import errors

    if message.get("type") != "error":
        return
    code = int(message.get("exit_code") or 1)
    error = getattr(errors, _ERRORS.get(code, "TextLesionSegError"))(str(message.get("message") or "the job failed"))
    error.exit_code = code
    raise error


class RemoteEngine:
    """The Python API's and the command line's door to a server.

    ``pipeline.run.segment(image, texts, "lsms-demo", server=RemoteEngine(url, token_file="token.txt"))``
    sends the image to that server (only then does it leave this machine) and returns the same
    ``Result`` as a local run. ``token`` or ``token_file`` (else ``$TEXTLESIONSEG_TOKEN``).
    """

    def __init__(self, url: str, token: str | None = None, token_file: str | os.PathLike | None = None,
                 timeout: float = 30.0) -> None:
        if token is None and token_file is not None:
            token = read_token(token_file)
        token = token or os.environ.get("TEXTLESIONSEG_TOKEN", "")
        if not token:
            raise InputError("a server needs its token: give token_file (--token-file) or set TEXTLESIONSEG_TOKEN")
        self.url, self.token, self.timeout = check_url(url), token, timeout

    def info(self) -> dict[str, Any]:
        """The server's version, device, models, queue and limits (:func:`server_info`)."""
        return server_info(self.url, self.token, self.timeout)

    def run(self, kind: str, image: Any, texts: Any, model: Any, settings: Any, progress: Any = None,
            keep_probability: bool = False, include_points: Any = (), exclude_points: Any = ()) -> Any:
        """``segment``/``find_lesions``/``refine`` of ``image`` on the server -> the ``Result`` on
        ``image``'s grid. Clicks (``(R, A, S)`` mm) go with a ``segment`` or a ``refine``."""
        from ..core.types import InferenceSettings
        from ..core.settings import FIELD_NAMES
        from ..pipeline.io import write_image
        from .protocol import load_result

        if model is not None and not isinstance(model, str):
            raise InputError("a server runs its own registered models: give the model's name, not a loaded model")
        values = InferenceSettings.coerce(settings)
        mapping = {**{n: getattr(values, n) for n in FIELD_NAMES}, **values.extra}
        mapping.pop("notes", None)
        folder = Path(tempfile.mkdtemp(prefix="textlesionseg-remote-"))
        client = RemoteClient(self.url, self.token, timeout=self.timeout)
        try:
            request = {"type": kind, "model": model, "settings": mapping, "keep_probability": bool(keep_probability),
                       "image_path": str(write_image(image, folder / "input.nrrd", compress=True)),
                       "output_dir": str(folder)}
            if kind == "segment":
                request["texts"] = list(texts)
            for key, points in (("include_points", include_points), ("exclude_points", exclude_points)):
                if points:
                    request[key] = [[float(c) for c in point] for point in points]
            rid = client.submit(request)
            final: dict[str, Any] = {}
            while client.busy:
                for message in client.poll():
                    if message.get("id") != rid:
                        continue
                    if message["type"] == "progress" and progress is not None:
                        progress(str(message.get("stage")), message.get("fraction"))
                    elif message["type"] != "progress":
                        final = message
                time.sleep(0.05)
            final = next((m for m in client.poll() if m.get("id") == rid and m["type"] != "progress"), final)
            raise_for(final)
            result = load_result(final["result_path"], image=image)
            result.image = image  # the caller's own image, metadata included, as a local run returns it
            return result
        except BaseException:
            client.cancel()  # Ctrl+C or a progress callback's CancelledError cancels the server's job too
            raise
        finally:
            shutil.rmtree(folder, ignore_errors=True)
