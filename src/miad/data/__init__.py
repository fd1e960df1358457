"""Rendered data on disk: shards, per-split manifests, a Dataset over shards, exports."""
