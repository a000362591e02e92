"""What happens to a video's (or a live segment's) tracks once all its frames are stored, in this order:

1. tracks that are no person (no skeleton in any pose estimate: shadows, reflections) are deleted
   (``pipelines.ingest.quality.SkeletonCheckConfig``);
2. fragments of one person are stitched into one track (``pipelines.ingest.stitching``);
3. motionless tracks (an empty chair, a sign) are marked static and kept out of identities and search
   (``pipelines.ingest.quality.StaticTrackConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.ingest.quality import QualityConfig, SkeletonCheckConfig, StaticTrackConfig
from pipelines.ingest.stitching import stitch_video
from storage.database import Database
from storage.track_checks import delete_tracks, mark_static_tracks, skeletonless_tracks


@dataclass
class TrackCleanup:
    """What :func:`clean_up_tracks` did to one video's tracks.

    Attributes:
        no_skeleton: tracks deleted as no person.
        sightings_dropped, embeddings_dropped: what went with them.
        stitched: fragments joined into the track they continue.
        static: ids of the tracks marked static.
    """

    no_skeleton: int = 0
    sightings_dropped: int = 0
    embeddings_dropped: int = 0
    stitched: int = 0
    static: list[int] = field(default_factory=list)

    def notes(self) -> list[str]:
        """The ingest summary's words for it (nothing for what did not happen)."""
        out = []
        if self.no_skeleton:
            out.append(
                f"{self.no_skeleton} track{'s' if self.no_skeleton > 1 else ''} with no human skeleton in "
                f"any pose estimate (shadows, reflections) dropped"
            )
        if self.stitched:
            out.append(
                f"{self.stitched} track fragment{'s' if self.stitched > 1 else ''} stitched into the track "
                f"{'they continue' if self.stitched > 1 else 'it continues'}"
            )
        if self.static:
            out.append(
                f"{len(self.static)} static track{'s' if len(self.static) > 1 else ''} (motionless, e.g. an "
                f"empty chair) kept out of identities and search"
            )
        return out


def unencoded_reasons(short: int, long_: int, quality: QualityConfig = QualityConfig()) -> str:
    """Why tracks have no descriptor, in the words of the ingest summary and ``identities``, from the counts of
    ``storage.track_checks.unencoded_tracks``."""
    return (
        f"{short} lasting under 1 s; {long_} never showing a crop big enough to encode: under "
        f"{quality.min_height:g} px tall or {quality.min_width:g} px wide"
    )


def clean_up_tracks(
    db: Database,
    video_id: int,
    quality: QualityConfig = QualityConfig(),
    skeleton: SkeletonCheckConfig = SkeletonCheckConfig(),
    static: StaticTrackConfig = StaticTrackConfig(),
    estimates_pose: bool = True,
) -> TrackCleanup:
    """Run the three steps of the module docstring on one finished video's tracks.

    Args:
        db: the database holding the video.
        video_id: the finished video (or live segment).
        quality: the quality gate of the ingest (which boxes were due a pose estimate).
        skeleton, static: the rules' thresholds.
        estimates_pose: the video's people got pose estimates; without them no track is judged by its skeleton.
    """
    gone = skeletonless_tracks(
        db,
        video_id,
        max(quality.pose_min_height, quality.min_height),
        quality.border_margin,
        skeleton.min_attempts if estimates_pose else 0,
    )
    sightings, embeddings = delete_tracks(db, gone)
    stitched = stitch_video(db, video_id)
    marked = mark_static_tracks(
        db,
        video_id,
        static.min_duration_s,
        static.max_motion,
        static.max_resize,
        static.low_score,
        static.low_score_min_duration_s,
    )
    return TrackCleanup(len(gone), sightings, embeddings, stitched, marked)
