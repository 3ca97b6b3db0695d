"""Closed-form parameter and MAC counts of ``build_resnet(arch, ...)``, without building it.

Parameters include BN affine weights and the SE and classifier biases; MACs count convolutions
(SE convolutions on their 1x1 pooled map) and the classifier, as ``count_macs`` does. Output
sizes: a stride-1 convolution with odd kernel k and padding k // 2 keeps H; a stride-2 one gives
ceil(H / 2) (so does the 1x1 stride-2 shortcut); a bottleneck's first 1x1 convolution runs
before its stride; a patchify stem gives floor(H / p).
"""

from __future__ import annotations

from robnas.spaces._resnet import BOTTLENECK_EXPANSION, ResNetArch, se_hidden

__all__ = ["resnet_mac_count", "resnet_param_count", "resnet_sizes"]


def resnet_sizes(
    arch: ResNetArch, *, in_channels: int = 3, input_size: tuple[int, int] = (32, 32), num_classes: int = 10
) -> dict[str, int]:
    """``{"params": ..., "macs": ...}`` of the network of ``arch`` on ``in_channels`` x H x W images.

    Raises:
        ValueError: if a patchify stem's patch is larger than the image.
    """
    height, width = input_size
    preact, k = arch.block == "preact", arch.kernel_size
    params = macs = 0

    def conv(c_in: int, c_out: int, kernel: int, positions: int) -> None:
        nonlocal params, macs
        params += c_in * c_out * kernel * kernel
        macs += positions * c_in * c_out * kernel * kernel

    def bn(channels: int) -> None:
        nonlocal params
        params += 2 * channels

    def se(channels: int) -> None:
        nonlocal params, macs
        hidden = se_hidden(channels, arch.se_ratio)
        if hidden:
            params += 2 * channels * hidden + hidden + channels
            macs += 2 * channels * hidden

    if arch.stem == "patchify":
        height, width = height // arch.stem_kernel, width // arch.stem_kernel
        if height < 1 or width < 1:
            raise ValueError(f"a patchify stem of {arch.stem_kernel} pixels needs images at least that large, "
                             f"got {input_size[0]}x{input_size[1]}")
    conv(in_channels, arch.stem_width, arch.stem_kernel, height * width)
    if not preact:
        bn(arch.stem_width)
    channels = arch.stem_width
    for stage, (depth, out) in enumerate(zip(arch.stage_depths, arch.stage_widths)):
        for index in range(depth):
            stride = 2 if stage > 0 and index == 0 else 1
            before = height * width  # a bottleneck's first 1x1 conv runs before the stride
            if stride == 2:
                height, width = -(-height // 2), -(-width // 2)
            p = height * width
            changes = stride != 1 or channels != out
            if arch.block == "basic":
                conv(channels, out, k, p), bn(out), conv(out, out, k, p), bn(out)
            elif arch.block == "preact":
                bn(channels), conv(channels, out, k, p), bn(out), conv(out, out, k, p)
            else:
                mid = out // BOTTLENECK_EXPANSION
                conv(channels, mid, 1, before), bn(mid), conv(mid, mid, k, p), bn(mid), conv(mid, out, 1, p), bn(out)
            se(out)
            if changes:
                conv(channels, out, 1, p)
                if not preact:
                    bn(out)
            channels = out
    if preact:
        bn(channels)
    params += channels * num_classes + num_classes
    macs += channels * num_classes
    return {"params": params, "macs": macs}


def resnet_param_count(arch: ResNetArch, *, in_channels: int = 3, num_classes: int = 10) -> int:
    """Parameters of ``build_resnet(arch, in_channels=..., num_classes=...)``."""
    return resnet_sizes(arch, in_channels=in_channels, num_classes=num_classes)["params"]


def resnet_mac_count(
    arch: ResNetArch, *, in_channels: int = 3, input_size: tuple[int, int] = (32, 32), num_classes: int = 10
) -> int:
    """``count_macs(build_resnet(arch, ...), (in_channels, *input_size))``."""
    return resnet_sizes(arch, in_channels=in_channels, input_size=input_size, num_classes=num_classes)["macs"]
