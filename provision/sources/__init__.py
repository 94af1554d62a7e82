"""Sources: one module per URL scheme, one interface; :mod:`.schemes` is the table that maps a scheme to it.

- ``fetch_<scheme>(url, sink, ctx)`` moves one file's bytes into a :class:`~.partial.Sink`
  (raising :class:`~.base.AttemptFailed` with what the source answered);
- ``list_<scheme>(url, ctx) -> list[Listed]`` expands a folder entry (a manifest file
  whose name ends in ``/``) into files, each with a URL one of the fetchers takes.
"""
