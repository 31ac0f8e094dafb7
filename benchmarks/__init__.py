"""Measured runs: `python -m benchmarks --applications N` runs every benchmark module's main()."""
