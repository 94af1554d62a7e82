"""The command line: a thin layer that parses, calls one :mod:`provision.api` function and renders.

:mod:`.app` assembles the commands; :mod:`.common` holds the shared options and error rendering;
:mod:`.render` the progress bars and text forms of results.
"""
