"""The SQLite state database: the mirror index and every table other packages keep in it."""
