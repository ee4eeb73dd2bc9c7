"""Kaggle dataset snapshots: selection, manifest, staging, notes, history, triggers."""
