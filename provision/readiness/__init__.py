"""``provision doctor``: is this machine ready? :mod:`.run` the report; :mod:`.machine` Python,
packages, cache and GPU checks; :mod:`.needs` packages and disk NAME needs; :mod:`.network` source
hosts and credentials.
"""
