"""The user's working copy: params.yaml's active profile, and data/ (backgrounds, textures) against data.dvc."""
