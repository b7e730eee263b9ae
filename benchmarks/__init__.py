"""lightning_clr's benchmarks, run as ``python -m benchmarks.<name>`` from the repository root: ``overhead``,
``auto_bounds``, ``time_to_accuracy`` and ``guard`` (see ``benchmarks/README.md``)."""
