"""Benchmarks that print figures (see bench/README.md); not tests.

Run each as a module from the repository root, with syncd and the test extra
installed (``make test`` does that), e.g. ``.venv/bin/python -m bench.drive_fake``:
the fakes are imported as the ``tests`` package, nothing edits ``sys.path``.
"""
