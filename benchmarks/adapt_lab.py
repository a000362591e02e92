"""Site self-adaptation (``reid-app adapt``) on the four lab cameras: identities' precision and recall against the
calibration ground truth before and after, with the wall time and peak memory of ``adapt`` (issue 31).

    python benchmarks/adapt_lab.py --db /tmp/labfull.db [--feedback 4] [--minutes 15]

The database is a ``reid-app ingest`` of lab_4cam/cam0-3 (made here when --db does not exist; whole videos by
default). It is copied, the four cameras are marked as overlapping (they see one room), and identities are clustered
at the model's threshold. With ``--feedback N``, N same-person and N different-person cross-camera track pairs of
the ground truth are given as an investigator's verdicts first; precision and recall are then counted over the other
pairs only. ``adapt`` runs with its defaults (``--minutes``, ``--iterations`` as given); when its check does not let
it make the version current, the version is made current anyway here, to measure it (and that is said).
Precision/recall are co-membership of cross-camera track pairs (``benchmarks/identities_calibration.py``).
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LAB = ROOT.parent / "shared" / "data" / "videos" / "lab_4cam"


def main() -> None:
    from benchmarks.identities_calibration import co_membership
    from pipelines.adaptation.adapt import adapt_site
    from pipelines.adaptation.options import AdaptOptions, AdaptProgress
    from pipelines.adaptation.versions import make_current
    from pipelines.matching.feedback import confirm, reject
    from pipelines.matching.identities import cluster_identities
    from storage.database import open_database
    from storage.feedback import set_overlap
    from storage.videos import camera_ids_by_name
    from tests.lab_geometry import same_person_pairs

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="the lab ingest (made here when missing); a copy is adapted")
    parser.add_argument("--duration", type=float, default=None, help="seconds of each camera to ingest when made")
    parser.add_argument("--feedback", type=int, default=0, help="same- and different-person pairs given as verdicts")
    parser.add_argument("--minutes", type=float, default=AdaptOptions().minutes)
    parser.add_argument("--iterations", type=int, default=AdaptOptions().iterations)
    args = parser.parse_args()

    base = Path(args.db)
    if not base.exists():
        command = [sys.executable, "-m", "reid_app.cli", "ingest", *(str(LAB / f"cam{i}.mp4") for i in range(4))]
        command += ["--db", str(base)] + (["--duration", str(args.duration)] if args.duration else [])
        subprocess.run(command, check=True, cwd=ROOT)
    work = Path(tempfile.mkdtemp()) / "lab-adapt.db"
    shutil.copy(base, work)
    db = open_database(work)
    set_overlap(db, sorted(camera_ids_by_name(db).values()))
    cluster_identities(db, reason="benchmark")
    labels = same_person_pairs(work, LAB)
    given = set()
    if args.feedback:
        same = sorted(p for p, v in labels.items() if v)[:: max(1, sum(labels.values()) // args.feedback)][
            : args.feedback
        ]
        different = sorted(p for p, v in labels.items() if not v)[::7][: args.feedback]
        for a, b in same:
            confirm(db, a, b)
        for a, b in different:
            reject(db, a, b)
        given = set(same) | set(different)
    scored = {p: v for p, v in labels.items() if p not in given}
    precision, recall, joined = co_membership(db, scored)
    print(
        f"lab ingest {base}: {sum(scored.values())} same-person and {sum(not v for v in scored.values())} "
        f"different-person cross-camera pairs scored; {len(given)} pairs given as verdicts"
    )
    print(f"before: identities precision {precision:.3f} recall {recall:.3f} ({joined} pairs joined)")

    options = replace(AdaptOptions(), minutes=args.minutes, iterations=args.iterations)
    started = time.perf_counter()

    class Stages(AdaptProgress):
        def stage(self, text, total=None):
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"  {time.perf_counter() - started:6.1f} s  peak {peak:5.0f} MB  {text}", flush=True)

    report = adapt_site(db, options, Stages())
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"adapt: {seconds:.0f} s wall ({report.training_seconds:.0f} s training, {report.iterations} batches), "
        f"peak memory {peak:.0f} MB; {report.tracklets} tracklets, {report.images} crops, "
        f"{report.associated} associated across cameras, {report.held_out} pairs held out"
    )
    print(f"check before: {report.before.as_dict()}")
    print(f"check after:  {report.after.as_dict()}")
    if report.made_current is None or report.made_current.switch is None:
        print(f"not made current by adapt ({report.not_current_because}); made current here to measure it")
        started = time.perf_counter()
        made = make_current(db, report.version_model)
        print(f"re-encoding and switch: {time.perf_counter() - started:.0f} s ({made.reencode.encoded} sightings)")
    precision, recall, joined = co_membership(db, scored)
    print(f"after:  identities precision {precision:.3f} recall {recall:.3f} ({joined} pairs joined)")
    db.close()


if __name__ == "__main__":
    main()
