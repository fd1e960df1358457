"""The train and evaluate stages (render lives in miad.render.shard, report in miad.reporting)."""
