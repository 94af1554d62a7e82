"""The manifests: the data model, TOML parsing with every problem collected, checksums,
the lock file of first-use pins, and folder entries ("the artifact as fetched").

:mod:`.model` frozen dataclasses and the catalog; :mod:`.parse` TOML -> dataclasses (``load_catalog``,
``lint``); :mod:`.fields` the problem collector and typed getters; :mod:`.checksum` the ``alg:hex``
notation; :mod:`.lockfile` ``provision.lock``; :mod:`.folders` folder listings and :func:`.folders.as_fetched`.
"""
