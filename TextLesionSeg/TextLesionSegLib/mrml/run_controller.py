"""The panel's run control without Qt: preload, start, progress, cancel, finish, crash, not found.

The Slicer widget owns a :class:`RunController` and calls :meth:`RunController.poll` from a
``QTimer``; everything else it shows comes from the events ``poll`` returns. The worker client
is injected (a factory returning a ``worker.client.WorkerClient``, a ``worker.remote.RemoteClient``
for a server, or anything with their ``submit / poll / cancel / stop / busy / log_path`` interface), so the whole state machine is
tested with pytest, a real worker process and real MRML (slicer-core).

Behaviour the panel relies on:

* :meth:`preload` starts the worker and loads the chosen model as soon as the module is
  entered, so the model loads while the user types; an Apply during the preload waits for it
  (no second load) and is submitted the moment the worker is free.
* The worker answers every load and status request with its compute status (torch, CUDA
  devices, device choices): Slicer's own process never imports torch to show it.
* :meth:`cancel` kills the worker's process tree at once: nothing is added to the scene and
  the run's temporary files are deleted. A crashed worker gives one :class:`Failed` event
  naming its log, and the next run starts a fresh one.
* A description whose lesion is not in the scan is an answer, not an error: its (empty)
  segment is added and :class:`Finished` names it in ``not_found``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .session import RunContext, discard_run, finish_run, prepare_run, progress_state
from .table import fill_table_node


@dataclass
class Progress:
    """The worker's progress: a stage text and a percentage (``None``: a busy bar)."""

    text: str
    percent: int | None


@dataclass
class Finished:
    """A run's segments are in the scene."""

    imported: Any  # mrml.segmentation.ImportedResult
    rows: list[dict[str, Any]]
    table_node: Any
    warnings: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)  # names of segments left empty on purpose

    def summary(self) -> str:
        """One line for the status label."""
        count = len(self.imported.segment_ids)
        parts = [f"Done: {count} segment(s) added."]
        if self.not_found:
            parts.append(f"Not found in this scan: {', '.join(self.not_found)} (empty segment).")
        parts.extend(self.warnings)
        return " ".join(parts)


@dataclass
class Failed:
    """A run ended without adding anything; ``message`` is one line."""

    message: str
    exit_code: int = 1
    crashed: bool = False
    log_path: str | None = None


@dataclass
class Refined:
    """A click's answer replaced its segment's voxels (``correction`` holds the clicks and undo)."""

    correction: Any  # mrml.click_correction.ClickCorrection
    warnings: list[str] = field(default_factory=list)


@dataclass
class ComputeStatus:
    """The worker's torch/CUDA status (``pipeline.devices.compute_status``)."""

    compute: dict[str, Any]


class RunController:
    """One segmentation run at a time, in a background worker; Qt-free.

    Args:
        client_factory: makes the worker client on first use (Slicer: a ``WorkerClient`` on
            ``PythonSlicer``). Called again after :meth:`stop`.
    """

    def __init__(self, client_factory: Callable[[], Any]) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._context: RunContext | None = None
        self._request: dict[str, Any] | None = None  # a run waiting for the worker to be free
        self._segmentation_node: Any = None
        self._run_id: str | None = None  # the segment request in flight
        self._side_id: str | None = None  # a load/status request in flight
        self.compute: dict[str, Any] | None = None  # last compute status the worker gave
        self._correction: Any = None  # the ClickCorrection whose click is in flight

    # ---- state ------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """True from :meth:`start` until the run's :class:`Finished` or :class:`Failed`."""
        return self._context is not None or self._correction is not None

    @property
    def idle(self) -> bool:
        """True when nothing is in flight: no run, no preload, no status question."""
        return not self.busy and self._side_id is None

    @property
    def client(self) -> Any:
        """The worker client (made on first use)."""
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def use_client_factory(self, client_factory: Callable[[], Any]) -> None:
        """Switch engine (local worker / server): the run in flight is cancelled, the old client
        stopped; the next request makes its client with ``client_factory``."""
        self.stop()
        self._client_factory = client_factory
        self.compute = None  # the new engine's devices are its own

    # ---- requests ---------------------------------------------------------------------------
    def preload(self, model: str, device: str = "auto") -> bool:
        """Start the worker and load ``model`` ahead of Apply; False when the worker is busy."""
        return self._side_request({"type": "load", "model": model, "settings": {"device": device}})

    def request_compute_status(self) -> bool:
        """Ask the worker for its compute status (answered as a :class:`ComputeStatus` event)."""
        return self._side_request({"type": "status"})

    def _side_request(self, request: dict[str, Any]) -> bool:
        if self.busy or self.client.busy:
            return False
        self._side_id = self.client.submit(request)
        return True

    def start(self, volume_node: Any, descriptions: str, model: str, settings: dict[str, Any],
              roi_node: Any = None, keep_probability: bool = True, segmentation_node: Any = None) -> None:
        """Prepare a run (raises ``InputError`` on bad inputs, nothing started) and submit it.

        Raises:
            RuntimeError: a run is already in progress.
        """
        if self.busy:
            raise RuntimeError("a segmentation is already running; cancel it first")
        request, self._context = prepare_run(volume_node, descriptions, model, settings, roi_node, keep_probability)
        self._segmentation_node = segmentation_node
        self._request = request
        self._submit_waiting_run()

    def start_refine(self, correction: Any, model: str, settings: dict[str, Any]) -> None:
        """Run the click just added to ``correction`` (``mrml.click_correction``) on its lesion's
        region in the warm worker; a :class:`Refined` event follows once its segment is replaced.

        Raises:
            RuntimeError: a run or another click is in progress.
        """
        if self.busy:
            raise RuntimeError("a segmentation or a click is already running; wait for it or cancel it")
        self._correction = correction
        try:
            self._request = {"type": "refine", "image_path": str(correction.input_path()), "model": model,
                             "settings": dict(settings or {}), "output_dir": str(correction.input_path().parent),
                             **correction.request_fields()}
        except Exception:
            self._correction = None
            correction.discard_click()
            raise
        self._submit_waiting_run()

    def _submit_waiting_run(self) -> None:
        if self._request is not None and not self.client.busy:
            self._run_id, self._request = self.client.submit(self._request), None

    # ---- events -----------------------------------------------------------------------------
    def poll(self) -> list[Any]:
        """Events since the last call; never blocks."""
        if self._client is None:
            return []
        events: list[Any] = []
        for message in self._client.poll():
            rid = message.get("id")
            if rid is not None and rid == self._side_id:
                events.extend(self._side_event(message))
            elif rid is not None and rid == self._run_id:
                events.extend(self._run_event(message))
            # anything else belongs to an earlier, cancelled request
        self._submit_waiting_run()
        if self._request is not None and self.busy:
            events.append(Progress("Waiting for the model to load", None))
        return events

    def _side_event(self, message: dict[str, Any]) -> list[Any]:
        kind = message.get("type")
        if kind == "progress":
            return [Progress(*progress_state(message))] if self.busy else []
        self._side_id = None
        if kind == "status" and message.get("compute"):
            self.compute = message["compute"]
            return [ComputeStatus(self.compute)]
        if kind == "error" and not self.busy:
            # a failed preload is not a failed run: the run will report it itself
            return [Failed(str(message.get("message", "")), int(message.get("exit_code", 1)),
                           bool(message.get("crashed")), str(self.client.log_path))]
        return []

    def _run_event(self, message: dict[str, Any]) -> list[Any]:
        kind = message.get("type")
        if kind == "progress":
            return [Progress(*progress_state(message))]
        self._run_id = None
        if self._correction is not None:
            return [self._refined(message)]
        if kind == "result":
            return [self._finish(message)]
        self._discard()
        return [Failed(str(message.get("message", "")) or "the segmentation failed", int(message.get("exit_code", 1)),
                       bool(message.get("crashed")), str(self.client.log_path))]

    def _finish(self, message: dict[str, Any]) -> Any:
        """Import the result (all or nothing: ``import_result`` undoes a partial import)."""
        context = self._context
        try:
            imported, rows, result = finish_run(context, message["result_path"], self._segmentation_node)
            scene = context.volume_node.GetScene()
            table = fill_table_node(scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName("Lesions")),
                                    rows)
            segmentation = imported.segmentation_node.GetSegmentation()
            not_found = [segmentation.GetSegment(sid).GetName()
                         for sid, segment in zip(imported.segment_ids, result.segments) if not segment.found]
            return Finished(imported, rows, table, list(message.get("warnings") or []), not_found)
        except Exception as error:  # noqa: BLE001 - reported as one line; the scene is as it was
            return Failed(f"could not import the result: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
        finally:
            self._discard()

    def _refined(self, message: dict[str, Any]) -> Any:
        """Write a click's answer into its segment, or forget the click when the run failed."""
        from ..worker.protocol import load_result

        correction, self._correction = self._correction, None
        if message.get("type") != "result":
            correction.discard_click()
            return Failed(str(message.get("message", "")) or "the click model failed", int(message.get("exit_code", 1)),
                          bool(message.get("crashed")), str(self.client.log_path))
        try:
            correction.apply(load_result(message["result_path"]).segments[0].mask)
        except Exception as error:  # noqa: BLE001 - one line; the segment is as it was
            correction.discard_click()
            return Failed(f"could not apply the click: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
        return Refined(correction, list(message.get("warnings") or []))

    # ---- ending -------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the run now: the worker is killed, nothing is added, temporary files go."""
        if self._client is not None and self._client.busy:
            self._client.cancel()
            self._client.poll()  # drop the "cancelled" message: the panel already says so
        self._run_id = self._side_id = None
        if self._correction is not None:
            self._correction.discard_click()
            self._correction = None
        self._discard()

    def _discard(self) -> None:
        discard_run(self._context)
        self._context, self._request, self._segmentation_node = None, None, None

    def stop(self) -> None:
        """End the worker (its memory, GPU memory included, goes back); the next run starts one."""
        self.cancel()
        if self._client is not None:
            self._client.stop()
        self._client = None
