"""Per-track sampling: bound the re-id cost to at most ``k`` crops per track per time window, best quality first.

Every observation of a track is buffered for the current window (``window_s`` seconds of video time). While the
window is open, only the ``k`` best-quality accepted observations keep their crop (copied out of the frame); when
the window closes (the track is seen past its end, the track is lost, or the video ends) the whole window is
emitted: every observation for storage, the ``k`` best with crops for encoding. Memory is bounded by the number of
live tracks x (frames per window + ``k`` crops), independent of video length.

Every track that lasts ``min_track_s`` or more gets at least one crop encoded: while a track has had none, the
window also keeps its best *fallback* crop (one the quality gate rejected for the frame border or occlusion, but
big enough to encode; ``Observation.fallback``). When such a window closes with no accepted crop, and the track has
been seen for ``min_track_s`` by then, the fallback crop is encoded with its tiny quality, so the track can be
searched and clustered while counting for little.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from common.types import Observation


@dataclass(frozen=True)
class SamplingConfig:
    """Attributes:
    crops_per_window: ``k``, the most crops encoded per track per window.
    window_s: window length in seconds of video time.
    """

    crops_per_window: int = 1
    window_s: float = 1.0
    min_track_s: float = 1.0


@dataclass
class _Window:
    start: float
    observations: list[Observation] = field(default_factory=list)
    fallback: Optional[Observation] = None  # the best rejected-but-encodable crop, while the track has none


#: Makes the crop and part boxes of an accepted observation: ``obs -> (uint8 [h, w, 3], float32 [P, 4])``.
CropMaker = Callable[[Observation], "tuple[np.ndarray, np.ndarray]"]


def _drop_crop(obs: Optional[Observation]) -> None:
    """Give back an observation's crop (it will not be encoded); returns None, for ``window.fallback = ...``."""
    if obs is not None:
        obs.crop = obs.part_boxes = None


class TrackSampler:
    """Buffers one camera's observations per track and releases them window by window (module docstring)."""

    def __init__(self, config: SamplingConfig = SamplingConfig()):
        self.config = config
        self._windows: dict[int, _Window] = {}
        self._first_seen: dict[int, float] = {}  # track -> video time of its first observation
        self._encoded: set[int] = set()  # tracks with a crop released for encoding

    def add(self, obs: Observation, make_crop: CropMaker) -> list[Observation]:
        """Add one observation; returns the observations of any window this closes (may be empty)."""
        track = obs.detection.track_id
        released: list[Observation] = []
        window = self._windows.get(track)
        if window is not None and obs.time_s >= window.start + self.config.window_s:
            released = self._close(track, obs.time_s)
            window = None
        if window is None:
            window = self._windows[track] = _Window(start=obs.time_s)
        self._first_seen.setdefault(track, obs.time_s)
        window.observations.append(obs)
        if obs.quality > 0:
            self._keep_best(window, obs, make_crop)
            window.fallback = _drop_crop(window.fallback)  # an accepted crop makes the fallback needless
        elif (
            obs.fallback > 0
            and track not in self._encoded
            and not any(o.crop is not None for o in window.observations if o is not window.fallback)
        ):
            if window.fallback is None or obs.fallback > window.fallback.fallback:
                _drop_crop(window.fallback)
                obs.crop, obs.part_boxes = make_crop(obs)
                window.fallback = obs
        return released

    def _keep_best(self, window: _Window, obs: Observation, make_crop: CropMaker) -> None:
        holders = [o for o in window.observations if o.crop is not None]
        if len(holders) < self.config.crops_per_window:
            obs.crop, obs.part_boxes = make_crop(obs)
            return
        worst = min(holders, key=lambda o: o.quality)
        if obs.quality > worst.quality:
            _drop_crop(worst)
            obs.crop, obs.part_boxes = make_crop(obs)

    def _close(self, track: int, seen_until: Optional[float] = None) -> list[Observation]:
        """Release a track's window; ``seen_until``: the video time the track is seen at after it (it goes on),
        None when the track ended (lost, or the video ended)."""
        window = self._windows.pop(track)
        fallback = window.fallback
        if fallback is not None:
            lasted = (seen_until if seen_until is not None else window.observations[-1].time_s) - self._first_seen[
                track
            ]
            if lasted >= self.config.min_track_s - 1e-6:
                fallback.quality = fallback.fallback
            else:
                _drop_crop(fallback)
        if any(o.crop is not None for o in window.observations):
            self._encoded.add(track)
        if seen_until is None:  # the track ended: forget it
            self._encoded.discard(track)
            self._first_seen.pop(track, None)
        return window.observations

    def release_stale(self, now_s: float) -> list[Observation]:
        """Close the windows of tracks not seen for a whole window before ``now_s`` (lost tracks)."""
        released: list[Observation] = []
        for track in [t for t, w in self._windows.items() if w.observations[-1].time_s < now_s - self.config.window_s]:
            released += self._close(track)
        return released

    def release_all(self) -> list[Observation]:
        """Close every window (end of video)."""
        released: list[Observation] = []
        for track in list(self._windows):
            released += self._close(track)
        return released

    @property
    def buffered(self) -> int:
        """Observations currently held."""
        return sum(len(w.observations) for w in self._windows.values())


def evenly_spaced(count: int, most: int) -> np.ndarray:
    """Indices into ``count`` items of at most ``most`` of them spread evenly, first and last included (all of them
    when ``count <= most``): ``int64 [min(count, most)]``, ascending (empty for ``count <= 0``)."""
    if count <= 0 or most <= 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, count - 1, min(count, most)).round().astype(np.int64))
