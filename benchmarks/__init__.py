"""Benchmarks, each run as a module from the repository root (``make bench``).

For example ``python -m benchmarks.bench_serve --quick``; benchmarks/README.md says what
each measures.
"""
