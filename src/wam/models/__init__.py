"""Models of the wam family built from the shared pieces in wam.nn."""
