"""The three methods on a user's own data: `pairlib train` and `pairlib evaluate`, and the same from Python."""
