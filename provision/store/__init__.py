"""The content-addressed cache: layout, blobs, records, locks (:mod:`.cache`), what is recorded
per file (:mod:`.records`) and per tree (:mod:`.trees`), streaming hashers (:mod:`.hashing`),
checking cached files (:mod:`.verify`) and ``gc`` (:mod:`.gc`).
"""
