"""``provision demo``: the whole pipeline on generated data served from 127.0.0.1 (:mod:`.run`),
with its data generator (:mod:`.data`) and flaky local server (:mod:`.server`).
"""
