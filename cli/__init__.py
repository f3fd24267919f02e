"""The `vitrine` command, assembled from the packages' own command groups."""
