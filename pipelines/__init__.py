"""Qt-free processing, grouped by job:

- ``pipelines.ingest``: footage into tracks: video sources, the per-camera pipeline (detect, track, pose, quality,
  sampling), the multi-camera engine shared with live watch, track clean-up and stitching, file ingest.
- ``pipelines.live``: live cameras: streams, segment recording, watching a site, the watchlist and its alerts.
- ``pipelines.matching``: tracks into people: search, identities, links, feedback, the ANN index, and the
  application services the CLI and the app call.
- ``pipelines.evidence``: what leaves the system: evidence export, its media and case report, bystander
  redaction, and retention.
"""
