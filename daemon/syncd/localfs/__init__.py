"""The project folder on this machine: ignore rules and the walk (no target, no index)."""
