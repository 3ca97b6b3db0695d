"""Batched training augmentation: crops and flips of a whole batch, drawn from the trial's generator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from robnas.spaces import decode
from robnas.spaces._defaults import AUGMENTATIONS, DATASETS
from robnas.trainables._augment import augment


def per_image(x, generator, *, crop_padding, flip):
    """The same augmentation image by image, with the same draws in the same order."""
    b, _, h, w = x.shape
    p = crop_padding
    offsets = torch.randint(0, 2 * p + 1, (2, b, 1), generator=generator) if p else torch.zeros(2, b, 1, dtype=torch.long)
    mirrored = (torch.rand(b, 1, generator=generator) < 0.5) if flip else torch.zeros(b, 1, dtype=torch.bool)
    padded = F.pad(x, (p, p, p, p))
    out = []
    for i in range(b):
        top, left = int(offsets[0, i, 0]), int(offsets[1, i, 0])
        image = padded[i, :, top : top + h, left : left + w]
        out.append(image.flip(2) if mirrored[i, 0] else image)
    return torch.stack(out)


@pytest.mark.parametrize(("crop_padding", "flip"), [(4, True), (4, False), (0, True), (2, True)])
def test_matches_a_per_image_loop_with_the_same_draws(crop_padding, flip):
    x = torch.rand(64, 3, 12, 12)
    batched = augment(x, torch.Generator().manual_seed(3), crop_padding=crop_padding, flip=flip)
    looped = per_image(x, torch.Generator().manual_seed(3), crop_padding=crop_padding, flip=flip)
    assert batched.shape == x.shape and batched.dtype == x.dtype
    assert torch.equal(batched, looped)


def test_crops_cover_every_offset_and_flip_about_half():
    b, p, w = 4000, 4, 8
    ones = torch.ones(b, 1, w, w)
    out = augment(ones, torch.Generator().manual_seed(0), crop_padding=p, flip=False)
    # A crop shifted by s in [-p, p] rows shows max(0, -s) zero rows on top, max(0, s) below.
    zero_rows = out[:, 0].sum(dim=2) == 0  # (B, H)
    top = zero_rows.long().cumprod(dim=1).sum(dim=1)
    bottom = zero_rows.flip(1).long().cumprod(dim=1).sum(dim=1)
    assert set((bottom - top).tolist()) == set(range(-p, p + 1))
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    ramp = torch.arange(1, w + 1, dtype=torch.float32).expand(b, 1, w, w).contiguous()
    flipped = augment(ramp, torch.Generator().manual_seed(0), crop_padding=0, flip=True)
    mirrored = flipped[:, 0, 0, 0] > flipped[:, 0, 0, -1]
    assert torch.equal(flipped[mirrored], ramp[mirrored].flip(3))
    assert torch.equal(flipped[~mirrored], ramp[~mirrored])
    assert 0.45 < float(mirrored.float().mean()) < 0.55


def test_without_flip_nothing_is_ever_mirrored():
    b, w = 500, 8
    x = torch.arange(1, w + 1, dtype=torch.float32).expand(b, 1, w, w).contiguous()
    out = augment(x, torch.Generator().manual_seed(1), crop_padding=4, flip=False)
    nonzero = out[:, 0, w // 2]
    # Columns that show the image increase left to right in every crop.
    for row in nonzero[:50]:
        shown = row[row > 0]
        assert torch.all(shown[1:] > shown[:-1])


def test_same_generator_state_same_batch_and_nothing_drawn_when_off():
    x = torch.rand(16, 3, 8, 8)
    first = augment(x, torch.Generator().manual_seed(5), crop_padding=4, flip=True)
    assert torch.equal(first, augment(x, torch.Generator().manual_seed(5), crop_padding=4, flip=True))
    assert not torch.equal(first, augment(x, torch.Generator().manual_seed(6), crop_padding=4, flip=True))
    generator = torch.Generator().manual_seed(5)
    state = generator.get_state()
    assert augment(x, generator, crop_padding=0, flip=False) is x
    assert torch.equal(generator.get_state(), state)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"crop_padding": -1, "flip": True}, "crop_padding must be >= 0"),
     ({"crop_padding": 4, "flip": 1}, "flip must be true or false"),
     ({"crop_padding": 2.5, "flip": False}, "crop_padding must be an integer")],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment(torch.rand(2, 1, 4, 4), torch.Generator(), **kwargs)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        augment(torch.rand(1, 4, 4), torch.Generator(), crop_padding=4, flip=True)


def test_dataset_defaults_and_policies():
    assert {d: decode({"dataset": d}).training.augment for d in DATASETS} == {
        "digits": False, "cifar10": True, "cifar100": True, "svhn": True, "mnist": False,
        "fashion_mnist": False, "npz": False,
    }
    assert decode({"dataset": "svhn"}).training.augmentation == (4, False)
    assert decode({"dataset": "cifar100"}).training.augmentation == (4, True)
    assert decode({"dataset": "npz", "augment": True}).training.augmentation == (4, True)
    assert decode({"dataset": "cifar10", "augment": False}).training.augmentation is None
    assert not {"digits", "mnist", "fashion_mnist"} & set(AUGMENTATIONS)


@pytest.mark.parametrize(
    ("config", "message"),
    [({"augment": True}, "'augment'.*must be false for dataset 'digits'"),
     ({"dataset": "mnist", "augment": True}, "'augment'.*dataset 'mnist'"),
     ({"dataset": "cifar10", "augment": 1}, "'augment'.*must be true or false, got 1 \\(int\\)"),
     ({"dataset": "cifar10", "augment": "yes"}, "'augment'.*must be true or false")],
)
def test_augment_key_is_validated(config, message):
    with pytest.raises(ValueError, match=message) as info:
        decode(config)
    assert "\n" not in str(info.value)
