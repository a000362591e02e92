"""Qt-free processing: video sources, the per-camera pipeline, multi-camera ingest and cross-camera search."""
