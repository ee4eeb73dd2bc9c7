"""A harness that drives the real syncd from the outside, for hostile and chaos tests.

* ``control``: the daemon as a subprocess, its control socket, waiting for quiescence;
* ``targets``: what a ``local:`` folder or the fake Drive holds (live tree, trash,
  temp leftovers, duplicates, foreign items);
* ``workload``: a seeded random user (edits, renames, swaps, bursts, git branch switches);
* ``invariants``: the promises checked after quiescence, as counts;
* ``runner``: workload + faults + ``kill -9`` + checks, shared by ``tests/test_chaos.py``
  and ``bench/chaos.py``.

Only ``syncd.config``/``syncd.errors`` are imported from syncd; everything else goes
through the CLI, the daemon subprocess or its socket, so the harness survives any
reorganisation of syncd's internals.
"""
