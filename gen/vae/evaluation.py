"""How well a VAE reconstructs square positions on held-out Not-so-Clevr squares."""

from __future__ import annotations

import numpy as np
import torch

from gen.data.notsoclevr import NotSoClevr
from gen.geometry import decode, decode_samples


@torch.no_grad()
def reconstruction_metrics(task, held_out: NotSoClevr, device: torch.device, batch: int = 512) -> dict:
    """Where each reconstruction puts its square, against the true centre.

    The reconstruction's square is its largest object (so a slightly soft square still has
    a position); an image with no object counts as a miss. Centre error is the larger of
    the x and y errors, in pixels. `reconstruction_valid_fraction` is the stricter check
    that the reconstruction is exactly one clean square.
    """
    if held_out.name != "squares":
        raise ValueError("reconstruction metrics are defined for the squares set")
    images = held_out.float_images()
    reconstructions = torch.cat([task.reconstruct(images[i:i + batch].to(device)).cpu()
                                 for i in range(0, len(images), batch)])
    objects = decode(reconstructions, value_range=(-1.0, 1.0), grey=True)
    largest_first = np.lexsort((-objects.pixels, objects.image))
    images_with_objects, first_rows = np.unique(objects.image[largest_first], return_index=True)
    centres = np.full((len(held_out), 2), np.nan)
    centres[images_with_objects] = objects.centre[largest_first[first_rows]]
    error = np.abs(centres - held_out.centres.numpy()).max(axis=1)
    found = np.isfinite(error)
    valid = decode_samples(reconstructions, "squares", value_range=(-1.0, 1.0)).valid
    return {
        "reconstruction_within_1px": float(np.mean(np.where(found, error, np.inf) <= 1.0)),
        "reconstruction_centre_error_px": float(error[found].mean()) if found.any() else float("nan"),
        "reconstruction_found_fraction": float(found.mean()),
        "reconstruction_valid_fraction": float(valid.mean()),
        "reconstruction_count": len(held_out),
    }
