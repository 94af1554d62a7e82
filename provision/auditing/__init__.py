"""The reproducibility audit: :mod:`.build` the report of one benchmark on this machine,
:mod:`.document` its file (schema, write, load), :mod:`.diff` what differs between two reports.
"""
