"""Benchmarks: each module runs as ``.venv/bin/python -m bench.NAME`` and reports into docs/benchmarks.md."""

from __future__ import annotations
