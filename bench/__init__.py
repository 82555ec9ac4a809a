"""`make bench`: the production stack under load, measured against its own ceiling."""
