"""Benchmarks against plain Ray: `python -m bench` (see __main__.py)."""
