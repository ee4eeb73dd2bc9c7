"""syncd: mirror a project folder to Google Drive and snapshot it to Kaggle."""

__version__ = "0.1.0"
