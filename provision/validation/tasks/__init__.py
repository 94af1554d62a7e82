"""Validation tasks: how a benchmark family's preprocessed samples feed a model and are scored.

A task reads the preprocessing output folder (the layout its recipe documents), hands the
runner one sample's arrays at a time (:meth:`.base.Task.load`, called from the prefetching loader's
threads), turns each batch of model outputs into predictions (:meth:`.base.Task.collect`, in the
consumer thread, batches in sample order) and finally scores them with MLPerf's own metric
definition (:mod:`provision.validation.metrics`).

The task is chosen by the benchmark's primary accuracy metric (:data:`.registry.TASKS`); a benchmark
whose metric has no task here cannot be validated locally and says so.
"""
