"""The training process's side of a job: append progress events, read the cancel file, honour SIGTERM.

``python -m core train --progress-file F --cancel-file C`` writes through a JobChannel; the viewer side
(``core.jobs.runner``) reads the same files.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.errors import JobCancelledError, LucidDxError, TrainingCancelledError
from core.i18n import _


class JobChannel:
    """The training process's side of a job: append events, read the cancel file, honour SIGTERM.

    Used by ``python -m core train --progress-file F --cancel-file C``; a no-op without them.
    """

    def __init__(self, progress_file: str | None, cancel_file: str | None, cancelled_text: str | None = None) -> None:
        self.progress_file = Path(progress_file) if progress_file else None
        self.cancel_file = Path(cancel_file) if cancel_file else None
        # What a viewer reads once the job stopped on request (a job that trains nothing says so differently).
        self.cancelled_text = cancelled_text

    def write(self, event: dict[str, Any]) -> None:
        if self.progress_file is None:
            return
        line = json.dumps({**event, "time": time.time()}, default=float)
        with open(
            self.progress_file, "a"
        ) as handle:  # one short append per event: readers never see half a line for long
            handle.write(line + "\n")

    def cancelled(self) -> bool:
        return self.cancel_file is not None and self.cancel_file.exists()

    def progress(self, also: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """A progress callback that logs via ``also``, records the event, and stops on cancel while loading."""

        def callback(event: dict[str, Any]) -> None:
            also(event)
            self.write(event)
            if event.get("event") == "loading" and self.cancelled():
                raise TrainingCancelledError(_("Training was cancelled; nothing was registered."))

        return callback

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        """Turn SIGTERM into a cancellation (so staging is cleaned) and record how the run ended."""
        previous = None
        # Signals reach only a main thread (a job on the engine runs in one of its actor's threads: Ray kills it).
        if self.progress_file is not None and threading.current_thread() is threading.main_thread():

            def on_sigterm(signum, frame):  # noqa: ARG001
                raise TrainingCancelledError(
                    self.cancelled_text or _("Training was stopped (SIGTERM); nothing was registered.")
                )

            previous = signal.signal(signal.SIGTERM, on_sigterm)
        try:
            yield
        except JobCancelledError:
            # Keras may append its layer-call context to the message; viewers get the plain sentence.
            self.write(
                {
                    "event": "cancelled",
                    "error": self.cancelled_text or _("Training was cancelled; nothing was registered."),
                }
            )
            raise
        except LucidDxError as exc:
            self.write({"event": "failed", "error": str(exc)})
            raise
        except BaseException as exc:
            self.write(
                {
                    "event": "failed",
                    "error": _("internal error ({error_type}: {exc}); see the log.").format(
                        error_type=type(exc).__name__, exc=exc
                    ),
                }
            )
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def finished(self, result: dict[str, Any]) -> None:
        self.write({"event": "finished", **result})
