"""Cross-camera search: rank the stored tracks (or sightings) by similarity to a track, a sighting or an image.

Similarity is the cosine of L2-normalised re-id embeddings, scored exactly over the whole gallery by
``pipelines.matching.similarity``. How a track is compared (``track_similarity``):

- ``mean``: each track is its descriptor, the quality-weighted mean of its sighting embeddings (a query track
  too; a sighting or image query is its own vector);
- ``max``: the best similarity over all pairs of query samples and gallery sightings.

By default one result per track, shown by its best sighting and listing its next best sightings; the query's own
track is never returned; results can be limited to cameras and a time window and optionally re-ranked with
k-reciprocal encoding (Zhong et al., CVPR 2017) among the best candidates. A pair of tracks a user rejected is
never returned; a confirmed one is always returned first. Every search is written to the audit log.
"""

from __future__ import annotations

import stat
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

from common.errors import UsageError, setting
from models.encoders import ReIDEncoder
from models.parts import fallback_stripes, stripe_boxes
from models.reranking import k_reciprocal_rerank
from pipelines.ingest.sampling import evenly_spaced
from pipelines.matching.explain import PartSimilarity, explain_match, part_slices, visible_parts
from pipelines.matching.similarity import Scorer, TorchScorer, copy_rows
from storage.audit import record
from storage.database import Database
from storage.feedback import DIFFERENT, load_verdicts
from storage.identities import identities_of_tracks
from storage.model_registry import list_models, model_layout
from storage.reads import SightingInfo, get_sighting_embedding, get_sightings, get_tracks, sighting_keypoints
from storage.track_checks import static_track_ids
from storage.vector_index import EmbeddingIndex, index_folder
from storage.vectors import usable_embedding
from storage.videos import camera_ids_by_name

TRACK_SIMILARITIES = ("mean", "max")
#: Chosen on the four lab cameras against ground truth from their calibration (see README, "Search").
DEFAULT_TRACK_SIMILARITY = "mean"
#: Query samples used by ``max`` for a track query (evenly spaced over the track).
MAX_QUERY_SAMPLES = 32
#: Candidate tracks re-ranked by k-reciprocal encoding.
RERANK_CANDIDATES = 100
#: Sightings of a query track whose keypoints decide which of its body parts are visible (evenly spaced).
EXPLAIN_QUERY_SAMPLES = 8


@dataclass(frozen=True)
class SearchFilters:
    """Which gallery sightings may match.

    Attributes:
        cameras: camera names to search (None: every camera).
        exclude_cameras: camera names never returned.
        after, before: wall-clock window, seconds since the epoch (inclusive; None: open).
        other_cameras_only: never return the query's own camera (sighting and track queries).
        include_static: also return static tracks (motionless over their life: an empty chair); off by default.
    """

    cameras: Optional[Sequence[str]] = None
    exclude_cameras: Sequence[str] = ()
    other_cameras_only: bool = False
    after: Optional[float] = None
    before: Optional[float] = None
    include_static: bool = False


@dataclass(frozen=True)
class SearchOptions:
    """How to search.

    Attributes:
        top_k: results wanted (>= 1).
        per_track: one result per track (default) instead of one per sighting.
        samples_per_track: sightings listed under each track result, best first (>= 1; the first is the best).
        track_similarity: ``mean`` or ``max`` (module docstring).
        rerank: re-rank the best :data:`RERANK_CANDIDATES` tracks with k-reciprocal encoding.
        audit: write the search to the audit log.
    """

    top_k: int = 10
    per_track: bool = True
    samples_per_track: int = 3
    track_similarity: str = DEFAULT_TRACK_SIMILARITY
    rerank: bool = False
    audit: bool = True


@dataclass
class SightingMatch:
    """A matching sighting: where and when, its cosine ``score`` and thumbnail (see ``SightingInfo``)."""

    score: float
    sighting: SightingInfo


@dataclass
class SearchResult:
    """One ranked result: a track (or, with ``per_track=False``, one sighting of it).

    Attributes:
        track_id, camera_id, camera, local_track_id: the matching track.
        first_timestamp, last_timestamp: when the track is visible, seconds since the epoch.
        num_sightings: sightings in the track.
        score: cosine similarity in ``[-1, 1]`` (higher is more alike) under the search's track similarity.
        sightings: the best matching sightings of the track, best first (at least one).
        identity_id: the global identity the track belongs to, if any.
        confirmed: a user confirmed this track as the query's person.
        rerank_distance: the k-reciprocal distance that ordered the results, when re-ranked.
        parts: why this match, part by part (``pipelines.matching.explain``: head, upper body, lower body, legs; a part
        not
            visible in the query or the match has no similarity); empty for models without part branches.
    """

    track_id: int
    camera_id: int
    camera: str
    local_track_id: int
    first_timestamp: float
    last_timestamp: float
    num_sightings: int
    score: float
    sightings: list[SightingMatch] = field(default_factory=list)
    identity_id: Optional[int] = None
    confirmed: bool = False
    rerank_distance: Optional[float] = None
    parts: list[PartSimilarity] = field(default_factory=list)

    @property
    def best(self) -> SightingMatch:
        """The track's best matching sighting."""
        return self.sightings[0]


@dataclass
class _Query:
    vectors: np.ndarray  # float32 [Q, D]
    model_id: int
    track_id: Optional[int]
    camera_id: Optional[int]
    text: str


def _normalise(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, np.float32).reshape(-1, vectors.shape[-1])
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


#: Largest query image accepted, in pixels (a person crop is far smaller; bigger files are refused unread).
MAX_QUERY_PIXELS = 8192 * 8192


def read_query_image(path: str | Path) -> np.ndarray:
    """A query image as ``uint8 [H, W, 3]`` BGR. Its size is read from the file header first, so a huge image
    is refused before it is decoded.

    Raises:
        UsageError: missing, not a regular file (FIFO, device), not an image, or over :data:`MAX_QUERY_PIXELS`.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise UsageError(f"image {path} does not exist")
    if not stat.S_ISREG(path.stat().st_mode):
        raise UsageError(f"image {path} is not a regular file (a folder, FIFO or device); give an image file")
    try:
        with Image.open(path) as header:
            width, height = header.size
    except Image.DecompressionBombError:
        raise UsageError(f"image {path} is far too large for a person crop; crop the person first") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise UsageError(f"image {path} could not be read ({exc}); give a JPEG or PNG crop of a person") from None
    if width * height > MAX_QUERY_PIXELS:
        raise UsageError(
            f"image {path} is {width}x{height} pixels, too large for a person crop; crop the person "
            f"first (at most {MAX_QUERY_PIXELS} pixels)"
        )
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UsageError(f"image {path} could not be decoded (damaged, or a format OpenCV cannot read)")
    return image


class Searcher:
    """Searches a database; keeps one :class:`EmbeddingIndex` per model, refreshed before every search so videos
    ingested meanwhile are found (only new videos are read).

    Args:
        db: the open database.
        scorer: the :class:`pipelines.matching.similarity.Scorer` (default: exact torch scoring on the CPU), used by
        every
            search mode (sighting-level, ``max`` and ``mean`` track ranking).
        index_root: folder under which indexes are persisted (``storage.vector_index.index_folder``), so the next
            searcher opens them instead of reading every embedding; None keeps them in memory only.
    """

    def __init__(self, db: Database, scorer: Optional[Scorer] = None, index_root: Optional[str | Path] = None):
        self.db = db
        self.scorer = scorer or TorchScorer("cpu")
        self.index_root = index_root
        self._indexes: dict[int, EmbeddingIndex] = {}
        self._layouts: dict[int, list[dict]] = {}

    def index(self, model_id: int) -> EmbeddingIndex:
        """The up-to-date index of a model (loaded on first use)."""
        index = self._indexes.get(model_id)
        if index is None:
            dims = next((m.dims for m in list_models(self.db) if m.id == model_id), None)
            if dims is None:
                raise UsageError(f"{self.db.location} holds no embeddings of model {model_id}")
            index = self._indexes[model_id] = EmbeddingIndex.load(
                self.db, model_id, dims, copy_rows=copy_rows, folder=index_folder(self.db, model_id, self.index_root)
            )
        else:
            index.refresh(self.db)
        return index

    # -- queries ---------------------------------------------------------------------------------------------

    def by_track(
        self, track_id: int, options: SearchOptions = SearchOptions(), filters: SearchFilters = SearchFilters()
    ) -> list[SearchResult]:
        """Tracks most like track ``track_id``.

        Raises:
            UsageError: no such track, or it has no embedding (none of its crops passed the quality gate).
        """
        info = get_tracks(self.db, [track_id]).get(track_id)
        if info is None:
            raise UsageError(f"track {track_id} does not exist in {self.db.location}")
        if info.descriptor is None:
            raise UsageError(
                f"track {track_id} has no embedding (none of its crops passed the quality gate); choose another track"
            )
        vectors = info.descriptor[None]
        if options.track_similarity == "max":
            index = self.index(info.descriptor_model_id)
            samples = index.matrix[index.rows_of(track_id)]
            if len(samples):
                vectors = samples[evenly_spaced(len(samples), MAX_QUERY_SAMPLES)].astype(np.float32)
        query = _Query(vectors, info.descriptor_model_id, track_id, info.camera_id, f"track {track_id}")
        return self._search(query, options, filters)

    def by_sighting(
        self, sighting_id: int, options: SearchOptions = SearchOptions(), filters: SearchFilters = SearchFilters()
    ) -> list[SearchResult]:
        """Tracks most like sighting ``sighting_id``'s embedding (its own track excluded).

        Raises:
            UsageError: no such sighting, or it has no embedding (it was not sampled for encoding).
        """
        try:
            emb = get_sighting_embedding(self.db, sighting_id)
        except LookupError:
            raise UsageError(f"sighting {sighting_id} does not exist in {self.db.location}") from None
        if emb is None:
            raise UsageError(
                f"sighting {sighting_id} has no embedding (it was not sampled for re-id); search by its track instead"
            )
        query = _Query(emb.vector[None], emb.model_id, emb.track_id, emb.camera_id, f"sighting {sighting_id}")
        return self._search(query, options, filters)

    def by_image(
        self,
        image_path: str | Path,
        encoder: ReIDEncoder,
        options: SearchOptions = SearchOptions(),
        filters: SearchFilters = SearchFilters(),
    ) -> list[SearchResult]:
        """Tracks most like a person image (a crop of one person, any size), encoded by ``encoder``.

        Raises:
            UsageError: unreadable image, or the database holds no embeddings of ``encoder``'s model.
        """
        image = read_query_image(image_path)
        models = [
            m for m in list_models(self.db) if m.name == encoder.name and m.checkpoint_hash == encoder.checkpoint_hash
        ]
        if not models:
            raise UsageError(
                f"{self.db.location} holds no embeddings made by re-id model {encoder.name}; pass the "
                f"{setting('reid')} weights that were used for ingest"
            )
        boxes = stripe_boxes(image.shape[0], image.shape[1], fallback_stripes(encoder.num_parts))[None]
        vector = encoder.encode([image], boxes)[0]
        if not usable_embedding(vector):
            raise UsageError(
                f"re-id model {encoder.name} gave an unusable embedding for {image_path} (not finite "
                f"or zero); try another crop"
            )
        return self.by_vector(vector, models[0].id, options, filters, text=f"image {image_path}")

    def by_vector(
        self,
        vector: np.ndarray,
        model_id: int,
        options: SearchOptions = SearchOptions(),
        filters: SearchFilters = SearchFilters(),
        text: str = "vector",
    ) -> list[SearchResult]:
        """Tracks most like a ``float32 [D]`` query embedding of model ``model_id``.

        Raises:
            UsageError: the vector's dimension is not the model's.
        """
        return self._search(_Query(np.asarray(vector, np.float32)[None], model_id, None, None, text), options, filters)

    # -- ranking ---------------------------------------------------------------------------------------------

    def _search(self, query: _Query, options: SearchOptions, filters: SearchFilters) -> list[SearchResult]:
        if options.top_k < 1:
            raise UsageError(f"top_k must be at least 1, got {options.top_k}")
        if options.track_similarity not in TRACK_SIMILARITIES:
            raise UsageError(
                f"track similarity must be one of {', '.join(TRACK_SIMILARITIES)}, got {options.track_similarity!r}"
            )
        started = time.perf_counter()
        index = self.index(query.model_id)
        if query.vectors.shape[1] != index.dims:
            raise UsageError(
                f"query has {query.vectors.shape[1]} dimensions but the stored embeddings have {index.dims}"
            )
        vectors = _normalise(query.vectors)
        rejected, confirmed = self._verdicts(query.track_id)
        excluded = rejected if query.track_id is None else [query.track_id, *rejected]
        valid = self._valid_rows(index, filters, excluded)
        if filters.other_cameras_only and query.camera_id is not None:
            valid &= index.camera_ids != query.camera_id
        if not options.per_track:
            rows, scores = self.scorer.top(index, vectors, valid, options.top_k)
            ranked = [(int(index.track_ids[r]), float(s), [(int(r), float(s))]) for r, s in zip(rows, scores)]
            distances = None
        else:
            wanted = max(options.top_k, RERANK_CANDIDATES if options.rerank else 0)
            if options.track_similarity == "mean":
                tracks, scores = self._rank_by_descriptor(index, vectors, valid, wanted)
            else:
                tracks, scores = self.scorer.top_tracks(index, vectors, valid, wanted)
            tracks, scores, distances = self._rerank(index, vectors, tracks, scores, options)
            tracks, scores, distances = self._confirmed_first(
                index, vectors, valid, tracks, scores, distances, confirmed, options
            )
            ranked = [
                (t, s, self._best_rows(index, vectors, valid, t, options.samples_per_track))
                for t, s in zip(tracks[: options.top_k], scores[: options.top_k])
            ]
        results = self._results(index, ranked, distances, confirmed)
        self._explain(index, query, vectors, results, options.per_track)
        if options.audit:
            record(
                self.db,
                "search",
                query=query.text,
                model_id=query.model_id,
                options={k: v for k, v in asdict(options).items() if k != "audit"},
                filters=asdict(filters),
                results=[r.track_id for r in results],
                elapsed_ms=round((time.perf_counter() - started) * 1e3, 2),
            )
        return results

    def _verdicts(self, track_id: Optional[int]) -> tuple[list[int], set[int]]:
        if track_id is None:
            return [], set()
        rejected, confirmed = [], set()
        for v in load_verdicts(self.db, [track_id]):
            other = v.track_b if v.track_a == track_id else v.track_a
            if v.verdict == DIFFERENT:
                rejected.append(other)
            else:
                confirmed.add(other)
        return rejected, confirmed

    def _valid_rows(self, index: EmbeddingIndex, filters: SearchFilters, excluded_tracks: Sequence[int]) -> np.ndarray:
        names = camera_ids_by_name(self.db) if filters.cameras is not None or filters.exclude_cameras else {}

        def ids_of(cameras):
            unknown = [c for c in cameras if c not in names]
            if unknown:
                raise UsageError(
                    f"no camera named {', '.join(unknown)} in {self.db.location}; cameras: "
                    f"{', '.join(sorted(names)) or 'none'}"
                )
            return [names[c] for c in cameras]

        valid = np.ones(index.size, bool)
        if filters.cameras is not None:
            valid &= np.isin(index.camera_ids, ids_of(filters.cameras))
        if filters.exclude_cameras:
            valid &= ~np.isin(index.camera_ids, ids_of(filters.exclude_cameras))
        if filters.after is not None:
            valid &= index.timestamps >= filters.after
        if filters.before is not None:
            valid &= index.timestamps <= filters.before
        hidden = list(excluded_tracks) + ([] if filters.include_static else sorted(static_track_ids(self.db)))
        for t in hidden:
            valid[index.rows_of(t)] = False
        return valid

    def _rank_by_descriptor(self, index, vectors, valid, wanted):
        """Tracks ranked by descriptor, through the scorer (exact or approximate, on its device); a track may
        be returned when any of its rows is valid."""
        if len(index.segment_starts) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        positions = index.segment_positions[np.logical_or.reduceat(valid, index.segment_starts)]
        track_valid = np.zeros(len(index.tracks), bool)
        track_valid[positions[positions >= 0]] = True
        query = _normalise(vectors.mean(axis=0, keepdims=True))
        rows, scores = self.scorer.top(index.track_vectors(), query, track_valid, wanted)
        return index.tracks.track_ids[rows], scores

    def _rerank(self, index, vectors, tracks, scores, options):
        if not options.rerank or len(tracks) < 3:
            return tracks, scores, None
        gallery = np.stack([index.descriptor_of(t) for t in tracks])
        query_gallery = (2 - 2 * scores)[None].astype(np.float64)
        gallery_gallery = np.maximum(2 - 2 * (gallery @ gallery.T), 0).astype(np.float64)
        k1 = min(20, len(tracks) - 1)
        distances = k_reciprocal_rerank(
            query_gallery, np.zeros((1, 1)), gallery_gallery, k1=k1, k2=min(6, k1), lambda_value=0.3
        )[0]
        order = np.argsort(distances, kind="stable")
        return tracks[order], scores[order], distances[order]

    def _confirmed_first(self, index, vectors, valid, tracks, scores, distances, confirmed, options):
        present = [t for t in confirmed if valid[index.rows_of(t)].any()]
        if not present:
            return tracks, scores, distances
        first_scores = []
        for t in present:
            if options.track_similarity == "mean":
                first_scores.append(float(index.descriptor_of(t) @ _normalise(vectors.mean(0, keepdims=True))[0]))
            else:
                first_scores.append(float(self.scorer.scores(index, vectors, index.rows_of(t)).max()))
        order = np.argsort(-np.array(first_scores), kind="stable")
        present = [present[i] for i in order]
        keep = ~np.isin(tracks, present)
        tracks = np.concatenate([np.array(present, np.int64), tracks[keep]])
        scores = np.concatenate([np.array(first_scores, np.float32)[order], scores[keep]])
        if distances is not None:
            distances = np.concatenate([np.full(len(present), np.nan), distances[keep]])
        return tracks, scores, distances

    def _best_rows(self, index, vectors, valid, track_id, count):
        rows = index.rows_of(track_id)
        sims = self.scorer.scores(index, vectors, rows)
        sims = np.where(valid[rows], sims, -np.inf)
        order = np.argsort(-sims, kind="stable")[:count]
        return [(rows.start + int(i), float(sims[i])) for i in order if np.isfinite(sims[i])]

    def _explain(self, index, query: _Query, vectors: np.ndarray, results: list[SearchResult], per_track: bool) -> None:
        """Fill each result's ``parts`` (``pipelines.matching.explain``): the query's and the match's part slices
        compared
        where keypoints show the part in both (one read of the keypoints involved)."""
        layout = self._layouts.get(query.model_id)
        if layout is None:  # a model's layout never changes once recorded: read it once per searcher
            layout = model_layout(self.db, query.model_id)
            if layout is not None:
                self._layouts[query.model_id] = layout
        names = [name for name, _, _ in part_slices(layout)]
        if not names or not results:
            return
        query_rows: list[int] = []
        if query.track_id is not None:
            rows = index.rows_of(query.track_id)
            query_rows = [
                int(index.sighting_ids[rows.start + i])
                for i in evenly_spaced(rows.stop - rows.start, EXPLAIN_QUERY_SAMPLES)
            ]
        wanted = query_rows + [m.sighting.id for r in results for m in r.sightings]
        observed = sighting_keypoints(self.db, wanted)
        query_visible = visible_parts([observed[i] for i in query_rows if i in observed], names) if query_rows else None
        query_vector = _normalise(vectors.mean(axis=0, keepdims=True))[0]
        for result in results:
            match_visible = visible_parts(
                [observed[m.sighting.id] for m in result.sightings if m.sighting.id in observed], names
            )
            if per_track:
                match_vector = index.descriptor_of(result.track_id)
            else:
                match_vector = self._sighting_vector(index, result.track_id, result.best.sighting.id)
            if match_vector is not None:
                result.parts = explain_match(
                    layout, query_vector, np.asarray(match_vector, np.float32), query_visible, match_visible
                )

    @staticmethod
    def _sighting_vector(index, track_id: int, sighting_id: int) -> Optional[np.ndarray]:
        rows = index.rows_of(track_id)
        hits = np.flatnonzero(index.sighting_ids[rows] == sighting_id)
        return None if len(hits) == 0 else np.asarray(index.matrix[rows.start + int(hits[0])], np.float32)

    def _results(self, index, ranked, distances, confirmed) -> list[SearchResult]:
        if not ranked:
            return []
        track_ids = [int(t) for t, _, _ in ranked]
        info = get_tracks(self.db, track_ids)
        identities = identities_of_tracks(self.db, track_ids)
        sighting_of = {r: int(index.sighting_ids[r]) for _, _, rows in ranked for r, _ in rows}
        sightings = get_sightings(self.db, list(sighting_of.values()))
        results = []
        for i, (t, score, rows) in enumerate(ranked):
            t = int(t)
            track = info.get(t)
            if track is None:  # deleted (a re-ingest replaced its video) since the index was loaded
                continue
            matches = [SightingMatch(s, sightings[sighting_of[r]]) for r, s in rows if sighting_of[r] in sightings]
            results.append(
                SearchResult(
                    t,
                    track.camera_id,
                    track.camera,
                    track.local_track_id,
                    track.first_timestamp,
                    track.last_timestamp,
                    track.num_sightings,
                    float(score),
                    matches,
                    identities.get(t),
                    t in confirmed,
                    None if distances is None or np.isnan(distances[i]) else float(distances[i]),
                )
            )
        return results
