"""The colours a set's objects are drawn in, measured from its images: where a generator that
draws each object as a layer of its own starts its layers' colours.

scipy (k-means) is imported only when colours are measured, so importing the data package
stays light for the training loop.
"""

from __future__ import annotations

import numpy as np
import torch

from gen.errors import InputError

COLOUR_SAMPLE = 1024  # images the colours are measured on (on the shapes, about 145,000 lit pixels)
MAX_PIXELS = 200_000  # lit pixels clustered at most: natural images light nearly every pixel


def object_colours(images: torch.Tensor, count: int, seed: int = 0) -> tuple[tuple[float, ...], ...]:
    """`count` colours in [0, 1], one per channel each, that the lit pixels (brightest
    channel above mid-grey) of `images` (N x C x H x W in [-1, 1]) cluster into by k-means,
    brightest first channel first (so the order does not turn with a cluster's share of the
    sample): on the two-object shapes, red then blue. Rounded to 4 decimals, as configs
    store them."""
    from scipy.cluster.vq import ClusterError, kmeans2

    pixels = ((images.detach().float().cpu() + 1) / 2).permute(0, 2, 3, 1).reshape(-1, images.shape[1])
    lit = pixels[pixels.amax(1) > 0.5].double().numpy()
    rng = np.random.default_rng(seed % 2**32)
    if len(lit) > MAX_PIXELS:
        lit = lit[np.sort(rng.choice(len(lit), MAX_PIXELS, replace=False))]
    distinct = len(np.unique(lit, axis=0))
    if distinct < count:
        raise InputError(f"the data's lit pixels hold {distinct} colour(s), fewer than the {count} object "
                         "layers to start from them; use --colour-start drawn")
    try:
        centroids, _ = kmeans2(lit, count, seed=rng, minit="++", missing="raise")
    except ClusterError:
        raise InputError(f"the data's lit pixels do not split into {count} colours (k-means left one "
                         "empty); use --colour-start drawn") from None
    colours = [tuple(round(float(value), 4) for value in centroid) for centroid in centroids]
    return tuple(sorted(colours, reverse=True))
