"""Per-track recognition on a lane stream: crops' scores folded into one, and when to report.

A track is classified several times (confirmed, each zone entry, when it settles, while it
rests). One crop can be poor: the item is moving (blur), held by a hand, half out of its box,
or the JPEG lost its detail. The track's labels are therefore a weighted mean of the class
probabilities (and embeddings) of its crops: once the item has settled only the crops of the
settled item count (before that, the moving item's crops), and each crop weighs its top
probability squared, so a confident view outweighs a confused one. The first result of a
zone visit is always reported; later ones only when the top label changes or its score
rose notably, a bounded number of times per zone visit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from lanesight.vision.observations import Label
from lanesight.vision.recognizer import CropScores
from lanesight.vision.zones import Zone


@dataclass
class _Sums:
    """Weighted sums of crops' probabilities and (unit) embeddings."""

    probs: np.ndarray | None = None
    embedding: np.ndarray | None = None
    weight: float = 0.0

    def add(self, scores: CropScores) -> None:
        probs = scores.probs.astype(np.float64)
        weight = max(float(probs.max()), 1e-3) ** 2
        norm = max(float(np.linalg.norm(scores.embedding)), 1e-12)
        embedding = scores.embedding.astype(np.float64) * (weight / norm)
        if self.probs is None or self.embedding is None:
            self.probs, self.embedding = probs * weight, embedding
        else:
            self.probs += probs * weight
            self.embedding += embedding
        self.weight += weight

    def mean(self) -> CropScores:
        assert self.probs is not None and self.embedding is not None
        return CropScores(
            (self.probs / self.weight).astype(np.float32),
            (self.embedding / self.weight).astype(np.float32),
        )


@dataclass
class _TrackScores:
    moving: _Sums = field(default_factory=_Sums)
    settled: _Sums = field(default_factory=_Sums)
    pending: int = 0
    # The zone visit being reported: its zone, ItemRecognized sent in it, the last one's top.
    zone: Zone | None = None
    reported: int = 0
    last_top: Label | None = None


class TrackRecognitions:
    """Folds each track's crop scores together and decides which results are reported.

    Not thread-safe: a lane stream uses it from its event loop only.
    """

    def __init__(self, min_gain: float, updates_max: int) -> None:
        self.min_gain = min_gain
        self.updates_max = updates_max
        self._tracks: dict[str, _TrackScores] = {}

    def __len__(self) -> int:
        return len(self._tracks)

    def expect(self, track_id: str) -> None:
        """A crop of the track went to the model; its state is kept until the result is in."""
        state = self._tracks.get(track_id)
        if state is not None:
            state.pending += 1
        else:
            self._tracks[track_id] = _TrackScores(pending=1)

    def abandon(self, track_id: str) -> None:
        """An expected crop was not classified (overload, shutdown)."""
        state = self._tracks.get(track_id)
        if state is not None and state.pending:
            state.pending -= 1

    def fold(self, track_id: str, scores: CropScores, settled: bool) -> CropScores:
        """Add one crop's scores to the track's; returns the track's scores now."""
        state = self._tracks.get(track_id)
        if state is None:
            state = self._tracks[track_id] = _TrackScores()
        elif state.pending:
            state.pending -= 1
        (state.settled if settled else state.moving).add(scores)
        return (state.settled if state.settled.weight else state.moving).mean()

    def should_report(self, track_id: str, zone: Zone | None, labels: tuple[Label, ...]) -> bool:
        """Whether the track's labels after a crop in ``zone`` are worth an ItemRecognized."""
        state = self._tracks.get(track_id)
        if state is None or not labels:
            return False
        top = labels[0]
        if state.reported == 0 or zone != state.zone:
            state.zone, state.reported, state.last_top = zone, 1, top
            return True
        last = state.last_top
        changed = last is None or top.label != last.label
        rose = last is not None and top.score >= last.score + self.min_gain
        if state.reported > self.updates_max or not (changed or rose):
            return False
        state.reported += 1
        state.last_top = top
        return True

    def retain(self, live_track_ids: Iterable[str]) -> None:
        """Forget tracks that are gone and have no crop in flight."""
        live = set(live_track_ids)
        for track_id in [t for t, s in self._tracks.items() if t not in live and not s.pending]:
            del self._tracks[track_id]
