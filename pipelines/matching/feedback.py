"""User feedback on matches: confirm or reject a pair of tracks, merge or split identities, forget a verdict.

Every action is stored as pair verdicts (``storage.feedback``), written to the audit log, and followed by
re-clustering the model's identities, so the next search and the identities honour it at once: a rejected pair
is never returned by a search of either track nor put in one identity; a confirmed pair is always in one identity
and returned first. Feedback never silently overrides the user:

- a verdict that contradicts an earlier one on the same pair (``reject`` after ``confirm``, a ``merge`` across a
  rejected pair), or through other confirmations links a rejected pair, is refused with the pair to forget first;
- a confirmation or merge that would make one person of tracks seen at the same time in one camera (or in two
  cameras not marked as overlapping) is refused with the two tracks and the time;
- every action reports what it changed (:attr:`ClusteringReport.changes`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Optional, Sequence

import numpy as np
from scipy.cluster.hierarchy import DisjointSet

from common.errors import UsageError
from common.timefmt import format_time
from pipelines.matching.constraints import confirmed_groups, seen_apart
from pipelines.matching.identities import ClusteringReport, cluster_identities
from storage.audit import read_log, record
from storage.database import Database
from storage.feedback import DIFFERENT, SAME, forget_verdict, load_overlaps, load_verdicts, set_verdicts
from storage.identities import labels, load_identities, set_label
from storage.reads import existing_tracks, get_tracks


def _check_tracks(db: Database, track_ids: Iterable[int]) -> int:
    """The common descriptor model of the tracks. Raises UsageError for missing or unencoded tracks."""
    ids = [int(t) for t in track_ids]
    info = get_tracks(db, ids)
    missing = [t for t in ids if t not in info]
    if missing:
        raise UsageError(f"track {', '.join(map(str, missing))} does not exist in {db.location}")
    unencoded = [t for t in ids if info[t].descriptor_model_id is None]
    if unencoded:
        raise UsageError(f"track {', '.join(map(str, unencoded))} has no embedding, so it cannot be matched")
    models = {info[t].descriptor_model_id for t in ids}
    if len(models) > 1:
        raise UsageError(f"tracks {', '.join(map(str, ids))} were encoded by different re-id models")
    return models.pop()


#: Feedback actions that ``undo`` can take back (newest first).
UNDOABLE = ("confirm", "reject", "forget", "merge", "split")


def _verdicts_of(db: Database, pairs: Iterable[tuple[int, int]]) -> list[list]:
    """``[[a, b, verdict or None], ...]`` for the given pairs, as stored now (for the audit log and undo)."""
    wanted = sorted({tuple(sorted((int(a), int(b)))) for a, b in pairs})
    stored = {(v.track_a, v.track_b): v.verdict for v in load_verdicts(db, {t for p in wanted for t in p})}
    return [[a, b, stored.get((a, b))] for a, b in wanted]


_WORD = {SAME: "confirmed as the same person", DIFFERENT: "rejected as different people"}


class VerdictConflict(UsageError):
    """A feedback action refused because it conflicts with what is stored or possible; the message names the
    pair. The app uses the fields to ask the user what to do instead of only refusing.

    Attributes:
        kind: ``contradiction`` (the pair has the opposite verdict), ``linked`` (confirmations link a pair that
            would be rejected, or the reverse) or ``simultaneous`` (one person seen twice at one instant).
        track_a, track_b: the conflicting pair of track ids (``track_a < track_b`` for stored verdicts).
        earlier: the stored verdict (``same``/``different``) for ``contradiction``; else None.
        cameras: for ``simultaneous`` across two cameras, their names (marking them as overlapping would allow
            it); else an empty tuple.
    """

    def __init__(
        self,
        message: str,
        kind: str,
        track_a: int,
        track_b: int,
        earlier: Optional[str] = None,
        cameras: tuple[str, ...] = (),
    ):
        super().__init__(message)
        self.kind, self.track_a, self.track_b = kind, int(track_a), int(track_b)
        self.earlier, self.cameras = earlier, tuple(cameras)


def _when(created_at: datetime) -> str:
    return created_at.strftime("%Y-%m-%d %H:%M UTC")


def _check_consistent(
    db: Database,
    same: Sequence[tuple[int, int]],
    different: Sequence[tuple[int, int]],
    forget: Sequence[tuple[int, int]] = (),
) -> None:
    """Refuse verdicts that contradict stored ones on the same pair, or would confirm and reject the same people
    at once; pairs in ``forget`` (a split's explicit overrides) are not held against the new verdicts."""
    forgotten = {tuple(sorted(p)) for p in forget}
    verdicts = [v for v in load_verdicts(db) if (v.track_a, v.track_b) not in forgotten]
    wanted = {tuple(sorted(p)): SAME for p in same} | {tuple(sorted(p)): DIFFERENT for p in different}
    for v in verdicts:
        new = wanted.get((v.track_a, v.track_b))
        if new is not None and new != v.verdict:
            raise VerdictConflict(
                f"tracks {v.track_a} and {v.track_b} were {_WORD[v.verdict]} on "
                f"{_when(v.created_at)}; run 'reid-app feedback forget {v.track_a} {v.track_b}' "
                f"first if that was wrong",
                "contradiction",
                v.track_a,
                v.track_b,
                v.verdict,
            )
    same_pairs = [(v.track_a, v.track_b) for v in verdicts if v.verdict == SAME] + list(same)
    different_pairs = [(v.track_a, v.track_b) for v in verdicts if v.verdict == DIFFERENT] + list(different)
    groups = confirmed_groups(same_pairs)
    for a, b in different_pairs:
        if a in groups and b in groups and groups.connected(a, b):
            raise VerdictConflict(
                f"tracks {a} and {b} would be both confirmed as one person (through other "
                f"confirmations) and rejected; run 'reid-app feedback forget {a} {b}' or forget "
                f"the confirmation that links them first",
                "linked",
                a,
                b,
            )
    _check_possible(db, groups)


def _check_possible(db: Database, groups: DisjointSet) -> None:
    """Refuse confirmations that put one person in two places at once: two tracks of one group seen at the same
    time in one camera, or in two cameras not marked as overlapping (``pipelines.matching.constraints``)."""
    subsets = [sorted(g) for g in groups.subsets() if len(g) > 1]
    info = get_tracks(db, [t for g in subsets for t in g])
    overlaps = load_overlaps(db)
    for group in subsets:
        known = sorted((t for t in group if t in info), key=lambda t: (info[t].first_timestamp, t))
        first = np.array([info[t].first_timestamp for t in known])
        last = np.array([info[t].last_timestamp for t in known])
        cameras = np.array([info[t].camera_id for t in known])
        clashes = np.argwhere(np.triu(seen_apart(first, last, cameras, first, last, cameras, overlaps), 1))
        if not len(clashes):
            continue
        ta, tb = info[known[clashes[0][0]]], info[known[clashes[0][1]]]
        where = (
            f"on camera {ta.camera}"
            if ta.camera_id == tb.camera_id
            else f"on cameras {ta.camera} and {tb.camera} (not marked as overlapping)"
        )
        raise VerdictConflict(
            f"tracks {ta.id} and {tb.id} are seen at the same time {where}, from "
            f"{format_time(max(ta.first_timestamp, tb.first_timestamp))}; one person "
            f"cannot be both, so they are not confirmed as one",
            "simultaneous",
            ta.id,
            tb.id,
            cameras=() if ta.camera_id == tb.camera_id else (ta.camera, tb.camera),
        )


def _reported(report: ClusteringReport, lines: list[str]) -> ClusteringReport:
    """The action's own change lines, then what became of the identities it touched."""
    report.changes = lines + report.identity_changes
    return report


def confirm(db: Database, track_a: int, track_b: int) -> ClusteringReport:
    """Record that two tracks show the same person; re-cluster.

    Raises:
        UsageError: unknown or unencoded tracks, the same track twice, or a contradiction with a rejection.
    """
    return _pair(db, track_a, track_b, SAME, "confirm")


def reject(db: Database, track_a: int, track_b: int) -> ClusteringReport:
    """Record that two tracks show different people; re-cluster.

    Raises:
        UsageError: unknown or unencoded tracks, the same track twice, or the pair is linked by confirmations.
    """
    return _pair(db, track_a, track_b, DIFFERENT, "reject")


def _pair(db: Database, a: int, b: int, verdict: str, action: str) -> ClusteringReport:
    if a == b:
        raise UsageError(f"track {a} was given twice; {action} needs two different tracks")
    with db.exclusive() as tx:  # checked and written under the write lock: two at once cannot both pass
        model_id = _check_tracks(tx, [a, b])
        change, before = _store_pair(tx, a, b, verdict)
    report = cluster_identities(db, model_id, reason="feedback", around=[a, b])
    return _reported(report, [change + (" (already so; kept)" if before is not None else "")])


def _store_pair(db: Database, a: int, b: int, verdict: str) -> tuple[str, Optional[str]]:
    """Check, store and audit (as ``confirm`` or ``reject``) ``verdict`` on a pair, in the caller's transaction;
    returns the change line and the verdict stored before (None when there was none).

    Raises:
        VerdictConflict: see :func:`_check_consistent`.
    """
    pair = [(min(a, b), max(a, b))]
    same, different = (pair, []) if verdict == SAME else ([], pair)
    _check_consistent(db, same, different)
    before = _verdicts_of(db, pair)
    set_verdicts(db, same=same, different=different)
    record(
        db,
        "confirm" if verdict == SAME else "reject",
        track_a=a,
        track_b=b,
        before=before,
        after=_verdicts_of(db, pair),
    )
    return f"tracks {pair[0][0]} and {pair[0][1]} {_WORD[verdict]}", before[0][2]


def replace_verdict(db: Database, track_a: int, track_b: int, verdict: str) -> ClusteringReport:
    """Replace the stored verdict on a pair by ``verdict`` (``same``/``different``): a forget and the new verdict,
    two audited actions (undo takes back the newer first). What the app does when the user answers "replace" to
    a :class:`VerdictConflict` of kind ``contradiction``.

    Raises:
        UsageError: see :func:`forget`, :func:`confirm` and :func:`reject`.
    """
    model_id = _check_tracks(db, [track_a, track_b])
    pair = [(min(track_a, track_b), max(track_a, track_b))]
    with db.exclusive() as tx:  # the forget and the new verdict are one unit: a refusal leaves the earlier in place
        _check_consistent(tx, pair if verdict == SAME else [], pair if verdict == DIFFERENT else [], forget=pair)
        forgotten = _forget(tx, track_a, track_b)
        stored, _ = _store_pair(tx, track_a, track_b, verdict)
    report = cluster_identities(db, model_id, reason="feedback", around=[track_a, track_b])
    return _reported(report, [forgotten, stored])


def forget(db: Database, track_a: int, track_b: int) -> ClusteringReport:
    """Delete the verdict on a pair; re-cluster.

    Raises:
        UsageError: there is no verdict on that pair.
    """
    model_id = _check_tracks(db, [track_a, track_b])
    with db.exclusive() as tx:
        change = _forget(tx, track_a, track_b)
    report = cluster_identities(db, model_id, reason="feedback", around=[track_a, track_b])
    return _reported(report, [change])


def _forget(db: Database, track_a: int, track_b: int) -> str:
    """Delete and audit the verdict on a pair (in the caller's transaction); returns the change line."""
    pair = tuple(sorted((int(track_a), int(track_b))))
    stored = _verdicts_of(db, [pair])
    if not forget_verdict(db, track_a, track_b):
        raise UsageError(f"there is no confirmation or rejection of tracks {track_a} and {track_b} to forget")
    record(db, "forget", track_a=track_a, track_b=track_b, before=stored, after=_verdicts_of(db, [pair]))
    return f"tracks {pair[0]} and {pair[1]} are no longer {_WORD[stored[0][2]]}"


def _identity(db: Database, identity_id: int):
    found = load_identities(db, identity_ids=[identity_id])
    if not found:
        raise UsageError(
            f"identity {identity_id} does not exist in {db.location}; list them with 'reid-app identities'"
        )
    return found[0]


def merge(db: Database, identity_a: int, identity_b: int) -> ClusteringReport:
    """Merge two identities: the user says they are one person, which is stored as one confirmation between them
    (the earliest track of each). The other members' links stay the machine's suggestions, never confirmations
    nobody gave; both identities are re-clustered together with that confirmation.

    Raises:
        UsageError: unknown identities, the same identity twice, or the pair contradicts a verdict (a rejection
            across the two, or people seen at the same time).
    """
    if identity_a == identity_b:
        raise UsageError(f"identity {identity_a} was given twice; merge needs two different identities")
    with db.exclusive() as tx:
        a, b = _identity(tx, identity_a), _identity(tx, identity_b)
        tracks = a.track_ids + b.track_ids
        first = {t.id: t.first_timestamp for t in get_tracks(tx, tracks).values()}
        anchor_a = min(a.track_ids, key=lambda t: (first.get(t, 0.0), t))
        anchor_b = min(b.track_ids, key=lambda t: (first.get(t, 0.0), t))
        same = [(min(anchor_a, anchor_b), max(anchor_a, anchor_b))]
        # possible only if every track of one can be the person of every track of the other (no rejection
        # across, nobody seen twice at once); checked as if all were confirmed, stored as the one pair
        _check_consistent(tx, [(min(x, y), max(x, y)) for x in a.track_ids for y in b.track_ids], [])
        before = _verdicts_of(tx, same)
        set_verdicts(tx, same=same)
        record(
            tx, "merge", identities=[identity_a, identity_b], tracks=tracks, before=before, after=_verdicts_of(tx, same)
        )
    report = cluster_identities(db, a.model_id, reason="feedback", around=tracks)
    report.subject_tracks = tracks
    return _reported(
        report,
        [
            f"identities {identity_a} and {identity_b} merged: tracks {same[0][0]} and "
            f"{same[0][1]} confirmed as one person"
        ],
    )


def split(db: Database, identity_id: int, track_ids: Sequence[int]) -> ClusteringReport:
    """Split the tracks ``track_ids`` off identity ``identity_id``: the user says they are not the rest, which is
    stored as a rejection of every pair across the two groups (earlier confirmations across are replaced) and
    nothing more: no pair within either group becomes a confirmation. Both groups are re-clustered under that.

    Raises:
        UsageError: unknown identity, tracks not in it, or no track left on one side.
    """
    with db.exclusive() as tx:
        identity = _identity(tx, identity_id)
        moved = sorted({int(t) for t in track_ids})
        outside = [t for t in moved if t not in identity.track_ids]
        if outside:
            raise UsageError(
                f"track {', '.join(map(str, outside))} is not in identity {identity_id} (its tracks: "
                f"{', '.join(map(str, identity.track_ids))})"
            )
        kept = [t for t in identity.track_ids if t not in moved]
        if not moved or not kept:
            raise UsageError(
                f"split needs some but not all tracks of identity {identity_id} "
                f"({', '.join(map(str, identity.track_ids))})"
            )
        across = [(min(x, y), max(x, y)) for x in moved for y in kept]
        _check_consistent(tx, [], across, forget=across)
        overridden = [
            v for v in load_verdicts(tx, moved) if v.verdict == SAME and (v.track_a, v.track_b) in set(across)
        ]
        before = _verdicts_of(tx, across)
        set_verdicts(tx, different=across)
        record(tx, "split", identity=identity_id, moved=moved, kept=kept, before=before, after=_verdicts_of(tx, across))
    report = cluster_identities(db, identity.model_id, reason="feedback", around=identity.track_ids)
    lines = [
        f"track{'s' if len(moved) > 1 else ''} {', '.join(map(str, moved))} split off identity "
        f"{identity_id}: {len(across)} pair{'s' if len(across) > 1 else ''} rejected across"
    ]
    if overridden:
        lines.append(
            "earlier confirmations replaced by rejections: " + ", ".join(f"{v.track_a}-{v.track_b}" for v in overridden)
        )
    return _reported(report, lines)


def undo(db: Database) -> ClusteringReport:
    """Take back the newest feedback action not yet undone (repeat to go further back): the verdicts it touched
    return to what they were before it; re-cluster. Recorded in the audit log as ``undo`` with the entry it undid.

    Raises:
        UsageError: nothing to undo, an action of an older reid-app (no record of what it changed), or the
            verdicts it touched changed since (the message names the pair).
    """

    with db.exclusive() as tx:  # two undos at once take back two entries, never the same one twice
        log = read_log(tx, limit=10**9)
        undone = {e.details.get("undoes") for e in log if e.action == "undo"}
        entry = next((e for e in log if e.action in UNDOABLE and e.id not in undone), None)
        if entry is None:
            raise UsageError("there is no feedback to undo")
        before, after = entry.details.get("before"), entry.details.get("after")
        if before is None or after is None:
            raise UsageError(
                f"the {entry.action} of {entry.created_at:%Y-%m-%d %H:%M} UTC was made by an older "
                f"reid-app that did not record what it changed; undo it by hand"
            )
        # pairs whose tracks retention removed since have nothing left to restore (their verdicts went with them)
        alive = existing_tracks(tx, {t for a, b, _ in before for t in (a, b)})
        gone = [f"{a}-{b}" for a, b, _ in before if a not in alive or b not in alive]
        before = [p for p in before if p[0] in alive and p[1] in alive]
        after = [p for p in after if p[0] in alive and p[1] in alive]
        now = _verdicts_of(tx, [(a, b) for a, b, _ in after])
        changed = [f"{a}-{b}" for (a, b, v), (_, _, w) in zip(after, now) if v != w]
        if changed:
            raise UsageError(
                f"the {entry.action} of {entry.created_at:%Y-%m-%d %H:%M} UTC cannot be undone: the "
                f"verdicts on tracks {', '.join(changed)} changed since"
            )
        model_id = _check_tracks(tx, {t for a, b, _ in before for t in (a, b)}) if before else None
        set_verdicts(
            tx,
            same=[(a, b) for a, b, v in before if v == SAME],
            different=[(a, b) for a, b, v in before if v == DIFFERENT],
            forget=[(a, b) for a, b, v in before if v is None],
        )
        record(tx, "undo", undoes=entry.id, action_undone=entry.action, before=after, after=before, removed_pairs=gone)
    what = f"undid the {entry.action} of {entry.created_at:%Y-%m-%d %H:%M:%S} UTC (audit entry {entry.id})"
    if model_id is None:
        return ClusteringReport(
            0,
            0,
            0,
            0,
            0.0,
            0.0,
            changes=[f"{what}: its tracks were removed by retention since, so nothing was left to restore"],
        )
    touched = sorted({t for a, b, _ in before for t in (a, b)})
    report = cluster_identities(db, model_id, reason="feedback", around=touched)
    return _reported(
        report,
        [
            f"{what}: {len(before)} pair{'s' if len(before) > 1 else ''} as before it"
            + (f" ({len(gone)} pair(s) whose tracks retention removed skipped)" if gone else "")
        ],
    )


def label(db: Database, identity_id: int, name: Optional[str], note: str = "") -> str:
    """Name identity ``identity_id`` (a person of interest, e.g. "Suspect A") with an optional note, or remove the
    name (``name`` None); audited. Returns a line saying what changed.

    Raises:
        UsageError: unknown identity, or an empty or over-long name (200 characters at most).
    """

    _identity(db, identity_id)
    old = labels(db).get(identity_id)
    if name is not None:
        name = name.strip()
        if not name or len(name) > 200:
            raise UsageError("a label must have 1 to 200 characters")
    set_label(db, identity_id, name, note)
    record(db, "label", identity=identity_id, label=name, note=note, before=list(old) if old else None)
    if name is None:
        return f"identity {identity_id} is no longer named" + (f" (was {old[0]!r})" if old else "")
    return f"identity {identity_id} named {name!r}" + (f" (was {old[0]!r})" if old and old[0] != name else "")
