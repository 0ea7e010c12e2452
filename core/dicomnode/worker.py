"""The background worker: one thread, one model load per process, scoring received instances in order.

Each instance goes through :func:`core.services.imaging.diagnose` (the same door, preprocessing,
prediction and Grad-CAM as the page and ``predict``), then its results are built as DICOM, the index
row is updated and the audit trail records it. Nothing here raises into the thread: whatever goes
wrong ends as a ``failed`` row with its reason.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import threading
import time
from pathlib import Path

import pydicom

from core.dicomnode import pacs, results
from core.errors import LucidDxError
from core.i18n import _
from core.services import approval, audit
from core.services import dicom_store as index
from core.services import imaging as diagnosis

log = logging.getLogger(__name__)
ROLE = "dicom-node"
ACTION = "predict"
OVERLAY_OPACITY = 0.4


_LOAD_LOCK = threading.Lock()


def classifier(spec: str | None) -> diagnosis.ImageClassifier:
    """The image model, loaded once per process (per version) and shared by every node in it.

    The node's results reach clinicians and the PACS, so it uses approved versions only: ``spec`` is
    resolved for every instance (an activation or roll-back applies at once; a version no longer
    approved fails the instance with ModelNotApprovedError's reason).
    """
    spec = diagnosis.usable_model(approval.CLINICAL_USE, spec)[0]
    with _LOAD_LOCK:  # two nodes starting at once must not load TensorFlow models side by side
        return _load(spec)


@functools.lru_cache(maxsize=4)
def _load(spec: str) -> diagnosis.ImageClassifier:
    return diagnosis.load_model(spec, approval.CLINICAL_USE)


def note_instance(sender: str, model: str | None, sha256: str | None, outcome: str) -> None:
    """One audit record per received instance; a failing audit store is logged, never fatal to the node."""
    audit.instance_received(sender, ROLE, ACTION, model, sha256, outcome)


def default_threads() -> int:
    """``LUCIDDX_DICOM_THREADS`` (default 4): instances scored side by side."""
    try:
        return max(1, int(os.environ.get("LUCIDDX_DICOM_THREADS", "4")))
    except ValueError:
        return 4


class Worker:
    """A queue of SOP Instance UIDs and the threads that score them.

    Several threads take instances from one queue, so a burst from the PACS is scored together: while one
    thread builds and writes an instance's SC and SR (pure Python, about 0.24 s), another's film is in the
    network (TensorFlow releases the GIL), and with LUCIDDX_SERVE on the films of a burst reach the replica
    together and are batched there (``serve.batch``). Each instance still ends alone, ``done`` or ``failed``.
    """

    def __init__(
        self, home: Path, model: str | None = None, pacs_target: str | None = None, threads: int | None = None
    ) -> None:
        self.home = home
        self.model_spec = model
        self.pacs_target = pacs_target
        self._queue: queue.Queue[tuple[str, str, str] | None] = queue.Queue()
        self._threads = [
            threading.Thread(target=self._run, name=f"luciddx-dicom-worker-{i}", daemon=True)
            for i in range(threads or default_threads())
        ]
        self.ready = threading.Event()

    def start(self) -> Worker:
        threading.Thread(target=self._load_then_start, name="luciddx-dicom-load", daemon=True).start()
        return self

    def _load_then_start(self) -> None:
        try:
            # Load before the first instance (in the served replica too), so its latency is scoring alone.
            diagnosis.warm_served(classifier(self.model_spec).spec)
        except LucidDxError as exc:
            log.error("the model could not be loaded: %s", exc)
        for thread in self._threads:
            thread.start()
        self.ready.set()

    def submit(self, uid: str, sender: str, sha256: str) -> None:
        self._queue.put((uid, sender, sha256))

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what is queued, then stop every thread (within ``timeout`` seconds in all)."""
        self.ready.wait(timeout)
        for _thread in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self.process(*item)
            except Exception as exc:  # a bug of ours must not stop the worker: that row fails, the rest go on
                # The exception's text may quote header values: its type only, the traceback on request.
                log.error(
                    "scoring %s failed unexpectedly (%s)",
                    item[0],
                    type(exc).__name__,
                    exc_info=bool(os.environ.get("LUCIDDX_DEBUG")),
                )
                note_instance(item[1], None, item[2], "failed")
                index.update(
                    item[0],
                    self.home,
                    status="failed",
                    finished=index.now_text(),
                    reason=_("Scoring failed unexpectedly ({error}); see the node's log.").format(
                        error=type(exc).__name__
                    ),
                )
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def process(self, uid: str, sender: str, sha256: str) -> None:
        """Score one received instance and write its results; the index row says how it ended."""
        index.update(uid, self.home, status="scoring")
        started = time.perf_counter()
        try:
            model = classifier(self.model_spec)
        except LucidDxError as exc:
            note_instance(sender, None, sha256, "failed")
            index.update(uid, self.home, status="failed", reason=str(exc), finished=index.now_text())
            return
        path = index.incoming_path(uid, self.home)
        result = diagnosis.diagnose(path, f"instance {uid}", model)
        if not result.ok or result.prediction is None or result.explanation is None:
            note_instance(sender, model.spec, sha256, "bad-input")
            index.update(
                uid, self.home, status="failed", reason=result.error, model=model.spec, finished=index.now_text()
            )
            log.info("instance %s: failed (%s)", uid, result.error)
            return
        prediction = result.prediction
        overlay = diagnosis.overlay(result.image.pixels, result.explanation, OVERLAY_OPACITY)
        try:
            files = results.write_results(pydicom.dcmread(path), overlay, prediction, index.results_dir(uid, self.home))
        except (LucidDxError, ValueError, AttributeError, TypeError) as exc:
            reason = _("The prediction was made but its DICOM results could not be built ({error}).").format(
                error=exc if isinstance(exc, LucidDxError) else type(exc).__name__
            )
            note_instance(sender, model.spec, sha256, "failed")
            index.update(
                uid,
                self.home,
                status="failed",
                reason=reason,
                label=prediction.label,
                probabilities=prediction.probabilities,
                model=model.spec,
                finished=index.now_text(),
            )
            return
        reason = None
        if prediction.out_of_distribution:
            reason = _("The image is unlike the chest films the model was trained on: the result is unreliable.")
        reason = self._forward(files, reason)
        note_instance(sender, model.spec, sha256, "ok")  # before the row says "done": a reader then finds both
        index.update(
            uid,
            self.home,
            status="done",
            label=prediction.label,
            probabilities=prediction.probabilities,
            out_of_distribution=prediction.out_of_distribution,
            model=model.spec,
            results=files.paths(),
            reason=reason,
            finished=index.now_text(),
        )
        log.info("instance %s: done in %.0f ms", uid, 1000 * (time.perf_counter() - started))

    def _forward(self, files: results.ResultFiles, reason: str | None) -> str | None:
        """Send the results to the configured PACS, if any; a failure is noted beside the reason."""
        if not self.pacs_target:
            return reason
        problem = pacs.send([files.secondary_capture, files.report], self.pacs_target)
        return reason if problem is None else "; ".join(filter(None, [reason, problem]))
