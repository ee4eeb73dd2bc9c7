"""Kaggle: dataset rules (``rules``) and the client adapter (``client``, the only kaggle import)."""
