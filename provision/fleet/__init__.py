"""Fleets: a lab's own content-addressed mirror, air-gapped bundles, one download per node.

Beside the stages (it reads what ``store`` holds and feeds ``fetching`` on other machines):
:mod:`~provision.fleet.contents` lists a set of names as verified blobs,
:mod:`~provision.fleet.mirror` lays them out (or uploads them) as ``<alg>/<hex>``,
:mod:`~provision.fleet.bundle` packs them into one streamed tar for machines without a network,
:mod:`~provision.fleet.distributed` makes one process per node fetch under torchrun.
"""
