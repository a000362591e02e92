"""Neural networks and their loaders: person detection + tracking, pose, part boxes, re-id encoders.

No Qt and no SQL here. Heavy libraries (ultralytics, onnxruntime, mmpose) are imported inside the functions that
need them, so importing this package is cheap and never downloads anything.
"""
