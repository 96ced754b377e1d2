"""Offline benchmarks: ``python -m benchmarks.<name> --help`` from the repository root.

Each script prints a table and writes ``benchmarks/results/<name>.json`` (git-ignored) with
the machine, the exact command and every number it printed.
"""
