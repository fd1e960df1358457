"""Datasets from outside the renderer: MVTec-layout folders (MIAD's release, MVTec AD, MVTec LOCO) become our
shards and manifests, so that training, evaluation, statistics and the report run on them unchanged."""
