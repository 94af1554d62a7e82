"""``python -m provision.cli``: the same as the ``provision`` command."""

from provision.cli.app import main

main()
