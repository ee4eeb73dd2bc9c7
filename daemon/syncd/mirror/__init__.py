"""One-way mirroring of a project folder: coalescing, comparing, the engine, ``sync --once``."""
