"""Not-so-Clevr: the paper's synthetic squares and two-object shapes, rendered in torch.

Conventions used everywhere in the toolkit: a centre is (x, y) with x the column and y the
row; images are uint8 N x C x H x W in {0, 255} here and float [-1, 1] once in a Dataset.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from gen.configs import SPLITS
from gen.errors import InputError
from gen.fileio import save_npz
from gen.images import to_model_range
from gen.sources import readable

CANVAS = 64
SQUARE_SIZE = 9
SQUARE_HALF = SQUARE_SIZE // 2
SQUARE_MIN, SQUARE_MAX = SQUARE_HALF, CANVAS - 1 - SQUARE_HALF  # centres 4..59
QUADRANT_EDGE = 32  # quadrant split: x > 32 and y > 32 is the held-out quadrant

SHAPES_MIN, SHAPES_MAX = 10, 53
SHAPES_MIN_DISTANCE = 20.0
CIRCLE_RADIUS = 4.5
COLOURS = ("red", "blue")
COLOUR_CHANNELS = (0, 2)
KINDS = ("square", "circle")


def square_centres(device: torch.device | str | None = None) -> torch.Tensor:
    """All 3136 centres of fully visible squares, (x, y) long tensor ordered by y then x."""
    axis = torch.arange(SQUARE_MIN, SQUARE_MAX + 1, device=device)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack([x.flatten(), y.flatten()], dim=1)


def render_squares(centres: torch.Tensor, canvas: int = CANVAS) -> torch.Tensor:
    """uint8 N x 1 x canvas x canvas images of one 9 x 9 white square per centre."""
    pixels = torch.arange(canvas, device=centres.device)
    in_cols = (pixels[None, :] - centres[:, 0:1]).abs() <= SQUARE_HALF
    in_rows = (pixels[None, :] - centres[:, 1:2]).abs() <= SQUARE_HALF
    mask = in_rows[:, :, None] & in_cols[:, None, :]
    return (mask.to(torch.uint8) * 255).unsqueeze(1)


def one_hot_maps(centres: torch.Tensor, canvas: int = CANVAS) -> torch.Tensor:
    """uint8 N x canvas x canvas maps with a single 1 at each centre pixel."""
    maps = torch.zeros(len(centres), canvas * canvas, dtype=torch.uint8, device=centres.device)
    maps[torch.arange(len(centres), device=centres.device), centres[:, 1] * canvas + centres[:, 0]] = 1
    return maps.view(-1, canvas, canvas)


def split_test_mask(
    centres: torch.Tensor, split: str, test_fraction: float = 0.2, seed: int = 0
) -> torch.Tensor:
    """Boolean mask of the test rows of `centres` for a split name (see SPLITS)."""
    if split == "all":
        return torch.zeros(len(centres), dtype=torch.bool, device=centres.device)
    if split == "quadrant":
        return (centres[:, 0] > QUADRANT_EDGE) & (centres[:, 1] > QUADRANT_EDGE)
    if split == "uniform":
        if not 0.0 < test_fraction < 1.0:
            raise InputError(f"test fraction must be in (0, 1), got {test_fraction}")
        generator = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(centres), generator=generator).to(centres.device)
        mask = torch.zeros(len(centres), dtype=torch.bool, device=centres.device)
        mask[order[: round(test_fraction * len(centres))]] = True
        return mask
    raise InputError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")


@dataclass
class NotSoClevr(Dataset):
    """A rendered set: images plus labels, all tensors on one device; a torch Dataset of
    (float image in [-1, 1], centre) pairs.

    `centres` is N x 2 for squares and N x 2 objects x 2 for shapes; `labels` holds the rest
    (one-hot maps, colours, kinds, test mask) keyed by the name they get in an .npz.
    """

    name: str
    images: torch.Tensor
    centres: torch.Tensor
    labels: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return to_model_range(self.images[index]), self.centres[index]

    def subset(self, rows: torch.Tensor) -> NotSoClevr:
        return NotSoClevr(
            self.name,
            self.images[rows],
            self.centres[rows],
            {key: value[rows] for key, value in self.labels.items()},
        )

    def part(self, which: str) -> NotSoClevr:
        """'train', 'test' or 'all' rows, using the stored test mask when there is one."""
        if which == "all":
            return self
        test = self.labels.get("test", torch.zeros(len(self), dtype=torch.bool))
        if which == "test":
            return self.subset(test)
        if which == "train":
            return self.subset(~test)
        raise ValueError(f"unknown part {which!r}; choose from train, test, all")

    def float_images(self) -> torch.Tensor:
        """The images as float N x C x H x W in [-1, 1], the models' range."""
        return to_model_range(self.images)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "images": self.images.permute(0, 2, 3, 1).cpu().numpy(),
            "centres": self.centres.cpu().numpy(),
        }
        arrays.update({key: value.cpu().numpy() for key, value in self.labels.items()})
        arrays["dataset"] = np.array(self.name)
        return arrays

    def save(self, path: str | os.PathLike) -> None:
        save_npz(path, **self.to_arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> NotSoClevr:
        with readable(path, "Not-so-Clevr .npz"), np.load(path, allow_pickle=False) as arrays:
            missing = {"images", "centres", "dataset"} - set(arrays.files)
            if missing:
                raise InputError(f"{path} is not a Not-so-Clevr .npz: missing {sorted(missing)}")
            labels = {
                key: torch.from_numpy(arrays[key])
                for key in arrays.files
                if key not in ("images", "centres", "dataset")
            }
            return cls(
                str(arrays["dataset"]),
                torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).contiguous(),
                torch.from_numpy(arrays["centres"]),
                labels,
            )


def make_squares(
    split: str = "all",
    test_fraction: float = 0.2,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> NotSoClevr:
    """All 3136 one-square images with centres, one-hot maps and the split's test mask."""
    centres = square_centres(device)
    return NotSoClevr(
        "squares",
        render_squares(centres),
        centres,
        {
            "onehot": one_hot_maps(centres),
            "test": split_test_mask(centres, split, test_fraction, seed),
        },
    )


def _draw_shape_centres(n: int, generator: torch.Generator) -> torch.Tensor:
    """n x 2 x 2 centres on the generator's device, redrawn where the two objects are closer
    than the minimum."""
    device = generator.device
    centres = torch.empty(n, 2, 2, dtype=torch.long, device=device)
    todo = torch.arange(n, device=device)
    while len(todo):
        centres[todo] = torch.randint(
            SHAPES_MIN, SHAPES_MAX + 1, (len(todo), 2, 2), generator=generator, device=device
        )
        gap = (centres[todo, 0] - centres[todo, 1]).float().norm(dim=1)
        todo = todo[gap < SHAPES_MIN_DISTANCE]
    return centres


def render_shapes(centres: torch.Tensor, kinds: torch.Tensor, canvas: int = CANVAS,
                  chunk: int = 4096) -> torch.Tensor:
    """uint8 N x 3 x canvas x canvas: object 0 in the red channel, object 1 in the blue.

    Rendered `chunk` images at a time to bound the float temporaries."""
    return torch.cat([_render_shapes_chunk(centres[i:i + chunk], kinds[i:i + chunk], canvas)
                      for i in range(0, len(centres), chunk)])


def _render_shapes_chunk(centres: torch.Tensor, kinds: torch.Tensor, canvas: int) -> torch.Tensor:
    pixels = torch.arange(canvas, device=centres.device)
    dx = (pixels.view(1, 1, 1, -1) - centres[:, :, 0].view(-1, 2, 1, 1)).float()
    dy = (pixels.view(1, 1, -1, 1) - centres[:, :, 1].view(-1, 2, 1, 1)).float()
    square = (dx.abs() <= SQUARE_HALF) & (dy.abs() <= SQUARE_HALF)
    circle = dx * dx + dy * dy <= CIRCLE_RADIUS**2
    masks = torch.where(kinds.view(-1, 2, 1, 1) == KINDS.index("circle"), circle, square)
    images = torch.zeros(len(centres), 3, canvas, canvas, dtype=torch.uint8, device=centres.device)
    for obj, channel in enumerate(COLOUR_CHANNELS):
        images[:, channel] = masks[:, obj].to(torch.uint8) * 255
    return images


def make_shapes(n: int = 50_000, seed: int = 0, device: torch.device | str | None = None) -> NotSoClevr:
    """The two-object RGB variant: a red and a blue square-or-circle, >= 20 px apart.

    Centres and kinds are drawn on the CPU whatever the device (CUDA's generator draws other
    numbers), so a seed names the same set everywhere; the images are rendered on `device`."""
    if n < 1:
        raise InputError(f"shapes count must be positive, got {n}")
    generator = torch.Generator().manual_seed(seed)
    centres = _draw_shape_centres(n, generator).to(device)
    kinds = torch.randint(0, 2, (n, 2), generator=generator).to(device)
    return NotSoClevr(
        "shapes",
        render_shapes(centres, kinds),
        centres,
        {"kinds": kinds, "colours": torch.tensor([0, 1], device=device).expand(n, 2).clone()},
    )
