"""Deterministic preprocessing of a benchmark's fetched inputs with a registered recipe (the recipes
live in the top-level ``preprocess`` package): :mod:`.plan` the recipe, inputs, cache key and run
records; :mod:`.runner` the worker pool, shards, merge and atomic commit; :mod:`.harness` what
MLPerf's reference implementation needs to run on the outputs (``provision harness``).
"""
