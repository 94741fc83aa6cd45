"""Frame sources: OpenCV VideoCapture (file, RTSP/HTTP URL, device index) or any Python object
with ``read() -> (ok, frame_bgr)`` like VideoCapture (a synthetic camera)."""

from __future__ import annotations

import importlib
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np


@runtime_checkable
class FrameSource(Protocol):
    """Anything that reads BGR frames like cv2.VideoCapture."""

    def read(self) -> tuple[bool, np.ndarray | None]:
        """The next frame; ok False when none is available."""
        ...


class SourceUnavailable(Exception):
    """The camera source cannot be opened or stopped delivering frames."""


class LoopingCapture:
    """A VideoCapture over a file that starts again at the end."""

    def __init__(self, capture: cv2.VideoCapture) -> None:
        self.capture = capture

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok, frame = self.capture.read()
        if not ok:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        return ok, frame

    def release(self) -> None:
        self.capture.release()


def open_frame_source(source: str, loop: bool = False) -> FrameSource:
    """Open a configured source (blocking: call from a worker thread).

    ``python:module:attribute`` imports the attribute; a class or factory is called
    with no arguments and must return an object with ``read()``. A run of digits is a
    camera device index; anything else goes to cv2.VideoCapture (file or URL).
    """
    if source.startswith("python:"):
        module_name, _, attribute = source[len("python:") :].partition(":")
        if not module_name or not attribute:
            raise SourceUnavailable("python sources are written python:module:attribute")
        target: Any = getattr(importlib.import_module(module_name), attribute)
        # A class or a factory function is called; an object with read() is used as is.
        is_factory = isinstance(target, type) or not hasattr(target, "read")
        made = target() if is_factory and callable(target) else target
        if not isinstance(made, FrameSource):
            raise SourceUnavailable(f"{source} did not give an object with read()")
        return made
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        capture.release()
        raise SourceUnavailable(f"cannot open camera source {source!r}")
    return LoopingCapture(capture) if loop else capture


def release_source(source: FrameSource) -> None:
    """Release a source if it has release()."""
    release = getattr(source, "release", None)
    if callable(release):
        release()
