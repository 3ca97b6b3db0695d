"""Training augmentation of a whole batch at once: random crop with zero padding, horizontal flip.

Batched tensor operations on the batch's device, no per-image Python loop: the batch is padded
once, every image's crop offsets (and flip) become one index grid, and one ``gather`` reads the
result. Every random draw comes from the ``torch.Generator`` passed in, so a trial that
checkpoints its generator resumes with the same crops and flips.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from robnas.spaces._checks import check_bool, check_int

__all__ = ["augment"]


def augment(x: Tensor, generator: torch.Generator, *, crop_padding: int, flip: bool) -> Tensor:
    """Randomly crop and flip every image of ``x`` (B, C, H, W); returns a new (B, C, H, W) tensor.

    Each image is cut, at its own size H x W, out of itself zero-padded by ``crop_padding`` (p)
    pixels per side, at offsets drawn uniformly from [0, 2p] per axis (torchvision's
    ``RandomCrop(H, padding=p)``); with ``flip``, it is then mirrored left-right with probability
    0.5. Draws, from ``generator`` on its own device: B row and B column offsets if p > 0, then B
    flip coins if ``flip``. p = 0 without ``flip`` returns ``x`` itself and draws nothing.
    """
    p = check_int("augment", "crop_padding", crop_padding, minimum=0)
    flip = check_bool("augment", "flip", flip)
    if x.dim() != 4:
        raise ValueError(f"augment needs images (B, C, H, W), got shape {tuple(x.shape)}")
    if p == 0 and not flip:
        return x
    b, c, h, w = x.shape
    device, draw_on = x.device, generator.device
    rows = torch.arange(h, device=device).expand(b, h)  # (B, H) rows of the padded image
    cols = torch.arange(w, device=device).expand(b, w)  # (B, W) columns of the padded image
    if p > 0:
        offsets = torch.randint(0, 2 * p + 1, (2, b, 1), generator=generator, device=draw_on).to(device)
        rows, cols = rows + offsets[0], cols + offsets[1]
    if flip:
        mirrored = torch.rand(b, 1, generator=generator, device=draw_on).to(device) < 0.5
        cols = torch.where(mirrored, cols.flip(1), cols)
    padded = F.pad(x, (p, p, p, p)) if p > 0 else x  # (B, C, H + 2p, W + 2p), zeros around
    index = (rows[:, :, None] * (w + 2 * p) + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.reshape(b, c, -1).gather(2, index).view(b, c, h, w)
