"""Footage into tracks: ``video`` (file sources), ``camera`` (one camera's detect, track, pose, quality and sampling
pipeline), ``engine`` (the multi-camera engine shared with live watch), ``track_cleanup`` and ``stitching`` (false
tracks out, fragments joined), ``files`` (ingest of video files), ``choices`` (model choices), ``mot_eval``
(tracking scored against MOTChallenge ground truth)."""
