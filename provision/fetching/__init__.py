"""Fetching artifacts into the cache: plan, space check, lock, download, verify, commit.

:mod:`.run` the orchestration; :mod:`.transfer` one file from the first source that delivers the
right bytes; :mod:`.folders` folder listings on first use; :mod:`.space` the disk-space check;
:mod:`.report` what happened to each file.
"""
