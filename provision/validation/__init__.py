"""Reference-accuracy validation on this machine: :mod:`.validate` the run and its verdict,
:mod:`.results` the report, :mod:`.models` which models can run, :mod:`.loader` the prefetching
batch loader, :mod:`.power` energy counters, :mod:`.runners` the runtimes, :mod:`.tasks` per-family
sample loading and scoring, :mod:`.metrics` MLPerf's metric definitions.
"""
