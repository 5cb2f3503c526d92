"""Reproducible performance figures for the engine: `make bench` (`python -m bench`).

See bench/README.md for what each figure means and how it is measured.
"""
