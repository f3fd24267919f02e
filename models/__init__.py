"""Model manifests, open_clip configs and the small committed demo model: data, shipped in the wheel."""
