"""Archives: safe extraction of one archive into a folder (:mod:`.archive`), and the extract step
of fetch that unpacks an artifact's verified archives into the cache and records them (:mod:`.unpack`).
"""
