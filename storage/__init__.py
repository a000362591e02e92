"""Storage: SQLAlchemy 2.x schema, database opening (SQLite by default) and repository functions.

No torch, no Qt: vectors travel as ``numpy.float32`` arrays and are stored as raw little-endian bytes.
"""
