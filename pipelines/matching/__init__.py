"""Tracks into people: ``similarity`` and ``ann`` (descriptors and the vector index), ``search`` (ranked matches),
``identities`` and ``linkage`` (clustering tracks into identities), ``feedback`` (investigators' verdicts),
``explain`` (why two tracks match), ``service`` (the application services the CLI and the app both call)."""
