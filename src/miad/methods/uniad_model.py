"""The UniAD reconstruction network (You et al., NeurIPS 2022), as in the authors' code.

Mirrors `models/reconstructions/uniad.py` and `models/necks/mfcn.py` of github.com/zhiyuanyou/UniAD:
a linear input projection of the feature tokens, a learned 2-D position embedding, a post-norm
transformer encoder, a decoder whose every layer starts from its own learned query embedding
(layer-wise query) and attends to the encoder output (first attention) and to the previous
decoder output (second attention), a final LayerNorm, and a linear output projection. Neighbour
masked attention forbids each query from attending to keys in its own `k x k` neighbourhood; the
original's configs enable it in all three attentions (`mask: [True, True, True]`), and so do we.
Tokens are laid out sequence-first, (L, B, C), like the original.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

POS_FEATURE_SPLIT = 2  # the learned position embedding is half row, half column features


def align_features(features: list[torch.Tensor], size: int) -> torch.Tensor:
    """The original's MFCN neck: resize every (B, C_i, h_i, w_i) map to size x size, concatenate -> (B, C, s, s).

    The original resizes with `nn.UpsamplingBilinear2d` (bilinear, align_corners=True), also when shrinking.
    """
    resized = [
        f if f.shape[-2:] == (size, size) else F.interpolate(f, size=(size, size), mode="bilinear", align_corners=True)
        for f in features
    ]
    return torch.cat(resized, dim=1)  # (B, C, s, s)


def neighbor_mask(size: int, neighborhood: int) -> torch.Tensor:
    """(s*s, s*s) bool attention mask, True where key k lies in query q's neighbourhood (forbidden).

    As the original's `generate_mask`: the neighbourhood spans `neighborhood // 2` cells each side.
    """
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    ys, xs = ys.reshape(-1), xs.reshape(-1)  # (s*s,)
    reach = neighborhood // 2
    near_y = (ys[:, None] - ys[None, :]).abs() <= reach  # (s*s, s*s)
    near_x = (xs[:, None] - xs[None, :]).abs() <= reach
    return near_y & near_x


def feature_jitter(features: torch.Tensor, scale: float, prob: float, generator: torch.Generator) -> torch.Tensor:
    """The original's feature jitter: with probability `prob` per batch, add noise N(0, (scale * |f| / C)^2).

    `features` is (B, C, h, w); |f| is each position's L2 norm over the C channels.
    """
    if torch.rand((), generator=generator, device=generator.device).item() > prob:
        return features
    channels = features.shape[1]
    norms = features.norm(dim=1, keepdim=True) / channels  # (B, 1, h, w)
    noise = torch.randn(features.shape, generator=generator, device=generator.device, dtype=features.dtype)
    return features + noise * norms * scale


class PositionEmbeddingLearned(nn.Module):
    """Absolute 2-D position embedding: a learned row and column vector per cell, concatenated."""

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size = size
        self.row_embed = nn.Embedding(size, dim // POS_FEATURE_SPLIT)
        self.col_embed = nn.Embedding(size, dim // POS_FEATURE_SPLIT)
        nn.init.uniform_(self.row_embed.weight)  # as the original's reset_parameters
        nn.init.uniform_(self.col_embed.weight)

    def forward(self) -> torch.Tensor:
        s = self.size
        x_emb = self.col_embed.weight[None].expand(s, s, -1)  # (H, W, C/2): column features vary along W
        y_emb = self.row_embed.weight[:, None].expand(s, s, -1)  # (H, W, C/2): row features vary along H
        return torch.cat([x_emb, y_emb], dim=-1).flatten(0, 1)  # (H*W, C)


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer (DETR style) with position added to queries and keys."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q = k = src + pos  # (L, B, C)
        src = self.norm1(src + self.dropout1(self.self_attn(q, k, src, attn_mask=mask, need_weights=False)[0]))
        ff = self.linear2(self.dropout(F.relu(self.linear1(src))))
        return self.norm2(src + self.dropout2(ff))  # (L, B, C)


class DecoderLayer(nn.Module):
    """Post-norm decoder layer whose query is its own learned embedding (the original's layer-wise query)."""

    def __init__(self, dim: int, num_queries: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.learned_embed = nn.Embedding(num_queries, dim)  # (L, C)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.multihead_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.linear1 = nn.Linear(dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(
        self,
        out: torch.Tensor,
        memory: torch.Tensor,
        pos: torch.Tensor,
        mask_memory: torch.Tensor | None,
        mask_out: torch.Tensor | None,
    ) -> torch.Tensor:
        """`out`: previous decoder output, `memory`: encoder output, both (L, B, C)."""
        tgt = self.learned_embed.weight[:, None].expand(-1, memory.shape[1], -1)  # (L, B, C)
        # the original's "self_attn" attends to the encoder memory, "multihead_attn" to the previous output
        attn = self.self_attn(tgt + pos, memory + pos, memory, attn_mask=mask_memory, need_weights=False)[0]
        tgt = self.norm1(tgt + self.dropout1(attn))
        attn = self.multihead_attn(tgt + pos, out + pos, out, attn_mask=mask_out, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout2(attn))
        ff = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
        return self.norm3(tgt + self.dropout3(ff))  # (L, B, C)


class UniADReconstruction(nn.Module):
    """Reconstructs (B, C, s, s) feature maps through a neighbour-masked transformer; returns the same shape."""

    def __init__(
        self,
        channels: int,
        size: int,
        hidden_dim: int,
        num_encoder_layers: int,
        num_decoder_layers: int,
        num_heads: int,
        feedforward_dim: int,
        neighborhood: int,
        dropout: float,
        masked: tuple[bool, bool, bool] = (True, True, True),
    ) -> None:
        super().__init__()
        if hidden_dim % num_heads or hidden_dim % POS_FEATURE_SPLIT:
            raise ValueError(f"hidden_dim {hidden_dim} must be even and divisible by num_heads {num_heads}")
        mask = neighbor_mask(size, neighborhood)  # (L, L)
        if any(masked) and bool(mask.all(dim=1).any()):
            raise ValueError(
                f"a {neighborhood}x{neighborhood} neighbour mask hides every key on a {size}x{size} feature map; "
                f"use a smaller neighbor_mask or a larger feature_size"
            )
        self.size = size
        self.masked = masked
        self.register_buffer("mask", mask, persistent=False)  # rebuilt from the config, never saved
        self.input_proj = nn.Linear(channels, hidden_dim)
        self.output_proj = nn.Linear(hidden_dim, channels)
        self.pos_embed = PositionEmbeddingLearned(size, hidden_dim)
        # the original deep-copies one layer N times (so copies start equal), then re-initialises every Linear
        encoder_layer = EncoderLayer(hidden_dim, num_heads, feedforward_dim, dropout)
        decoder_layer = DecoderLayer(hidden_dim, size * size, num_heads, feedforward_dim, dropout)
        self.encoder = nn.ModuleList(copy.deepcopy(encoder_layer) for _ in range(num_encoder_layers))
        self.decoder = nn.ModuleList(copy.deepcopy(decoder_layer) for _ in range(num_decoder_layers))
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        for module in self.modules():  # the original's `initializer: xavier_uniform`
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        b, c, h, w = features.shape
        if (h, w) != (self.size, self.size):
            raise ValueError(f"expected {self.size}x{self.size} feature maps, got {h}x{w}")
        tokens = features.flatten(2).permute(2, 0, 1)  # (L, B, C)
        src = self.input_proj(tokens)  # (L, B, D)
        pos = self.pos_embed()[:, None]  # (L, 1, D)
        mask_enc, mask_dec1, mask_dec2 = (self.mask if m else None for m in self.masked)
        memory = src
        for layer in self.encoder:
            memory = layer(memory, pos, mask_enc)  # (L, B, D)
        out = memory
        for layer in self.decoder:
            out = layer(out, memory, pos, mask_dec1, mask_dec2)  # (L, B, D)
        rec = self.output_proj(self.decoder_norm(out))  # (L, B, C)
        return rec.permute(1, 2, 0).reshape(b, c, h, w)  # (B, C, H, W)
