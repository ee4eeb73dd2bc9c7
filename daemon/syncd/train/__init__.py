"""Training runs on Kaggle GPUs (``syncd train``): see ``service`` for the order of things."""
