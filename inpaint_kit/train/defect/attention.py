"""Cross-attention capture for DefectFill's attention loss: a diffusers attention processor on the UNet's
cross-attention layers (``attn2`` of every transformer block) that records how much each latent pixel
attends to the defect token.

For one layer, the attention probabilities are ``(B * heads, h * w, 77)`` (softmax over the 77 prompt
tokens, so they sum to 1 over all tokens). The map of the token is the sum over its positions in the
tokenized prompt (one position for ``sks`` in the real CLIP vocabulary; a word split into several BPE pieces
counts as a whole), averaged over heads: ``(B, h, w)``. :meth:`AttentionStore.token_map` resizes every
layer's map to ``side x side`` (area average down, bilinear up) and averages over layers.

The layer's output always comes from diffusers' fused ``scaled_dot_product_attention`` (the
``AttnProcessor2_0`` recipe); while ``store.enabled``, the probabilities of the rows ``store.rows`` are
computed beside it from the same queries and keys. Disabled, it records nothing and costs nothing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def token_positions(tokenizer, prompt: str, word: str) -> list[int]:
    """Positions of ``word``'s tokens in ``prompt`` tokenized as the text encoder sees it (BOS at 0)."""
    ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length, truncation=True).input_ids
    piece = tokenizer(word, add_special_tokens=False).input_ids
    for start in range(len(ids) - len(piece) + 1):
        if ids[start:start + len(piece)] == piece:
            return list(range(start, start + len(piece)))
    raise ValueError(f"{word!r} ({piece}) does not occur in the tokenized prompt {prompt!r}")


class AttentionStore:
    """What the capture processors share: switch, token positions, latent grid, and the captured maps."""

    def __init__(self, positions: list[int]):
        self.positions = list(positions)
        self.enabled = False
        self.latent_hw: tuple[int, int] = (0, 0)
        self.rows: slice | None = None  # batch rows whose maps are recorded (None = all)
        self.maps: list[torch.Tensor] = []  # one (B, h, w) per cross-attention call

    def reset(self, latent_hw: tuple[int, int]) -> None:
        """Forget the maps; the next forward pass works on latents of ``latent_hw``."""
        self.maps, self.latent_hw = [], tuple(latent_hw)

    def grid(self, queries: int) -> tuple[int, int]:
        """The ``(h, w)`` of a layer with ``queries`` pixels: the latent grid downsampled by 2^k (ceil)."""
        lh, lw = self.latent_hw
        for k in range(8):
            h, w = math.ceil(lh / 2**k), math.ceil(lw / 2**k)
            if h * w == queries:
                return h, w
        raise ValueError(f"{queries} attention queries do not match the latent grid {lh}x{lw}")

    def record(self, probs: torch.Tensor, batch: int) -> None:
        """Store the token map of one layer from its probabilities ``(batch * heads, h * w, tokens)``."""
        heads = probs.shape[0] // batch
        token = probs[..., self.positions].sum(-1)  # (B * heads, h*w)
        token = token.reshape(batch, heads, -1).mean(1)  # average over heads -> (B, h*w)
        self.maps.append(token.reshape(batch, *self.grid(token.shape[1])))

    def token_map(self, side: int) -> torch.Tensor:
        """The token's map ``(B, side, side)``: every layer's map resized to ``side`` and averaged over layers."""
        if not self.maps:
            raise RuntimeError("no cross-attention map was captured (is the store enabled during the forward pass?)")
        sized = []
        for m in self.maps:
            m = m[:, None].float()
            if m.shape[-1] >= side and m.shape[-2] >= side:
                sized.append(F.adaptive_avg_pool2d(m, side))
            else:
                sized.append(F.interpolate(m, size=(side, side), mode="bilinear", align_corners=False))
        return torch.stack(sized).mean(0)[:, 0]


class CaptureProcessor:
    """An attention processor for cross-attention layers: the output is diffusers' ``AttnProcessor2_0``
    recipe (fused ``scaled_dot_product_attention``), and, while ``store.enabled``, the softmax of the same
    queries and keys is computed on the side for the rows ``store.rows`` only and the token's map recorded.
    The forward result is the same with or without capture; the extra cost is one ``q k^T`` over 77 keys."""

    def __init__(self, store: AttentionStore):
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.store = store
        self.fused = AttnProcessor2_0()

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, *args, **kwargs):
        if not self.store.enabled or encoder_hidden_states is None or attention_mask is not None:
            return self.fused(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            b, c, h, w = hidden_states.shape
            hidden_states = hidden_states.view(b, c, h * w).transpose(1, 2)
        batch = encoder_hidden_states.shape[0]
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query, key, value = (t.view(batch, -1, attn.heads, head_dim).transpose(1, 2) for t in (query, key, value))
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        # (B, heads, h*w, d) -> the output, exactly as AttnProcessor2_0
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        rows = self.store.rows or slice(None)
        probs = (query[rows] @ key[rows].transpose(-1, -2) * attn.scale).softmax(-1)  # (b, heads, h*w, 77)
        self.store.record(probs.flatten(0, 1), probs.shape[0])
        hidden_states = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(b, c, h, w)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def install(unet, store: AttentionStore) -> int:
    """Put a :class:`CaptureProcessor` on every cross-attention layer of ``unet`` (self-attention layers keep
    theirs). Returns the number of layers captured."""
    processors = dict(unet.attn_processors)
    capture = CaptureProcessor(store)
    n = 0
    for name in processors:
        if name.endswith("attn2.processor"):
            processors[name] = capture
            n += 1
    if not n:
        raise ValueError("the UNet has no cross-attention layers (attn2) to capture")
    unet.set_attn_processor(processors)
    return n


def mask_at(mask: torch.Tensor, side: int) -> torch.Tensor:
    """A defect mask ``(B, 1, H, W)`` in {0, 1} -> ``(B, side, side)``: the defect's share of each cell."""
    return F.adaptive_avg_pool2d(mask.float(), side)[:, 0]


def attention_loss(token_map: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE ``(B,)`` between the token's map ``(B, s, s)`` and the mask at that size ``(B, s, s)``."""
    return ((token_map.float() - mask.float()) ** 2).mean(dim=(1, 2))
