"""How well a VAE reconstructs object positions on held-out Not-so-Clevr images."""

from __future__ import annotations

import numpy as np
import torch

from gen.data.notsoclevr import NotSoClevr
from gen.geometry import decode_samples


@torch.no_grad()
def reconstruction_metrics(task, held_out: NotSoClevr, device: torch.device, batch: int = 512) -> dict:
    """Decode each reconstruction's objects and compare their centres with the truth.

    An invalid reconstruction (no clean object) counts as a miss at every tolerance.
    Centre error is the larger of the x and y errors, in pixels.
    """
    images = held_out.float_images()
    reconstructions = torch.cat([task.reconstruct(images[i:i + batch].to(device)).cpu()
                                 for i in range(0, len(images), batch)])
    decoded = decode_samples(reconstructions, held_out.name, value_range=(-1.0, 1.0))
    truth = held_out.centres.numpy().reshape(len(held_out), -1, 2)
    error = np.abs(decoded.centres - truth).max(axis=(1, 2))
    error[~decoded.valid] = np.inf
    finite = error[np.isfinite(error)]
    return {
        "reconstruction_valid_fraction": float(decoded.valid.mean()),
        "reconstruction_within_1px": float(np.mean(error <= 1.0)),
        "reconstruction_centre_error_px": float(finite.mean()) if len(finite) else float("nan"),
        "reconstruction_count": len(held_out),
    }
