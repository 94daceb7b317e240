"""Units of work with side effects (database, files, network). Each opens its own session."""
