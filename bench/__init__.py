"""Benchmarks: ``python -m bench`` (or ``scripts/bench``) runs them all and writes ``bench/RESULTS.md``."""
