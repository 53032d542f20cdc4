"""A user's env module with a bug at import: not an ImportError, so it is the env's error, not a path problem."""

raise RuntimeError("the module's own bug")
