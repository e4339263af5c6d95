"""sscard's benchmarks: ``python -m bench [--quick]`` (``make bench``) runs them all.

Each ``bench/<name>_bench.py`` measures one claim against a baseline measured in the same run
(echo card, bare transaction, pgbench tpcb-like, the wire-time floor) and writes
``bench/results/<name>.json``; :mod:`bench.__main__` runs every module in its own process,
:mod:`bench.report` collects the figures into ``bench/results/latest.json`` and
``latest.md``, :mod:`bench.plots` draws the PNG plots.
"""
