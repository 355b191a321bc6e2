"""Layer widths shared by the convolutional GAN and VAE networks."""

from __future__ import annotations

import math

from gen.errors import InputError

RESOLUTIONS = (32, 64, 128)


def check_resolution(resolution: int) -> None:
    """InputError unless the networks are built for this resolution (a power of two)."""
    if resolution not in RESOLUTIONS:
        raise InputError(f"resolution must be one of {RESOLUTIONS}, got {resolution}")


def stage_widths(resolution: int, width: int, max_width: int) -> list[int]:
    """Channel widths of the stride-2 stages at resolution / 2, / 4, ..., 4 (finest first):
    `width` at the finest, doubling as maps halve (pytorch/examples DCGAN), capped at
    `max_width`. Generators and decoders walk the list coarsest first."""
    check_resolution(resolution)
    stages = int(math.log2(resolution // 4))
    return [min(width * 2**k, max_width) for k in range(stages)]
