"""The paper profile's ImageNet backbones as pinned, DVC-tracked inputs: fetched once from their public URL with a
checksum, converted to safetensors with timm's key names, then pushed and pulled with everything else."""
