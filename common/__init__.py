"""The ground floor of reid-app: plain data types, errors, settings, weights resolution, time formatting, URL
redaction and box geometry. Every layer (``models``, ``storage``, ``pipelines``, ``ui``, and the top floor
``reid_app``) may import it; it imports none of them (``tests/test_layering.py``)."""
