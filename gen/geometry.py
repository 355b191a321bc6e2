"""Decode Not-so-Clevr images into objects: colour, centre, pixel count, bounding box, shape.

A pixel is *on* in a channel when it is brighter than the middle of the value range (uint8
> 127, [-1, 1] floats > 0, [0, 1] floats > 0.5). Objects are the 8-connected components of
each channel's on-pixels, so a colour is a channel: white for 1-channel images, red / green /
blue for RGB. The whole batch is labelled by one scipy call per chunk (a structuring element
that never joins two images) and measured with bincounts, so there is no Python loop per
image.

Shape call: an object is a square when at least half of the 12 pixels a 9 x 9 square has and
the radius-4.5 circle lacks (offsets (+-4, +-4), (+-4, +-3), (+-3, +-4) from the rounded
centroid) are on, else a circle. Unlike the fill of the bounding box, this survives a stray
pixel stuck to a square's side.

Validity (see `Tolerance`): squares need exactly one object, a square; shapes need exactly
one red and one blue object, nothing green, each a square or a circle. An object passes the
size check when its bounding box is 9 +- `side` pixels wide and high and its pixel count is
within `pixels` (a fraction) of the ideal count of its shape: 81 for the 9 x 9 square, 69 for
the circle of radius 4.5. Clipped squares at the canvas edge (at most 72 pixels) fail.

Placement, the position-only view: a sample is *placed* when every colour holds the expected
number of objects of at least MIN_PIXELS pixels (smaller specks are ignored), whatever their
shape and size; its positions are those objects' centroids. It separates where a generator
puts objects from how well it draws them. Every valid sample is placed at the same positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from gen.configs import GENERATED_SOURCES
from gen.data.notsoclevr import CANVAS, CIRCLE_RADIUS, COLOUR_CHANNELS, KINDS, SQUARE_HALF, SQUARE_SIZE
from gen.errors import InputError

DATASETS = GENERATED_SOURCES  # the generated sets are the ones an image decodes against
REASONS = ("valid", "blank", "object_count", "size", "shape")
MIN_PIXELS = 9  # an object is at least a ninth of a 9 x 9 square; below that it is a speck
CHUNK = 1024  # images labelled per scipy call: large enough to amortise, small enough for cache


def _circle_mask() -> np.ndarray:
    """The dataset's circle on the 9 x 9 square's grid (integer offsets within the radius)."""
    offsets = np.arange(-SQUARE_HALF, SQUARE_HALF + 1)
    return offsets[:, None] ** 2 + offsets[None, :] ** 2 <= CIRCLE_RADIUS**2


IDEAL_PIXELS = (SQUARE_SIZE**2, int(_circle_mask().sum()))  # indexed by KINDS: 81 square, 69 circle
# The pixels a square has and the circle lacks: offsets (+-4, +-4), (+-4, +-3), (+-3, +-4).
CORNERS = ~_circle_mask()

_EIGHT_CONNECTED_PER_PLANE = np.zeros((3, 3, 3), dtype=bool)
_EIGHT_CONNECTED_PER_PLANE[1] = True


@dataclass(frozen=True)
class Tolerance:
    """How far a decoded object may be from the ideal one and still count as valid.

    side: bounding-box width and height may differ from 9 by at most this many pixels.
    pixels: the pixel count may differ from the ideal count (81 square, 69 circle) by at
    most this fraction of it; 0.1 admits 73..89 for squares and 63..75 for circles.
    """

    side: int = 1
    pixels: float = 0.1


DEFAULT_TOLERANCE = Tolerance()


@dataclass
class Objects:
    """Every object found in a batch, one row per object, rows ordered by image then colour.

    centre is the (x, y) centroid of the object's pixels (x the column); bbox is
    (x0, y0, x1, y1) inclusive; kind indexes KINDS (0 square, 1 circle).
    """

    n_images: int
    colours: tuple[str, ...]
    image: np.ndarray
    colour: np.ndarray
    pixels: np.ndarray
    centre: np.ndarray
    bbox: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.image)

    def counts(self) -> np.ndarray:
        """n_images x n_colours: how many objects of each colour every image holds."""
        flat = np.bincount(self.image * len(self.colours) + self.colour,
                           minlength=self.n_images * len(self.colours))
        return flat.reshape(self.n_images, len(self.colours))


@dataclass
class Decoded:
    """Per-sample validity for a dataset, and the expected objects of the valid samples;
    the same for placement (the module docstring).

    centres is N x K x 2 (K = 1 for squares; 2 for shapes, red then blue), NaN where the
    sample is invalid; kinds is N x K, -1 where invalid; reason indexes REASONS.
    placed_centres is N x K x 2, NaN where the sample is not placed; placed_kinds and
    placed_pixels (N x K) are the kind called and the pixel count of those objects, -1 and 0
    where not placed: what a generator draws where it places objects.
    """

    dataset: str
    valid: np.ndarray
    reason: np.ndarray
    centres: np.ndarray
    kinds: np.ndarray
    placed: np.ndarray
    placed_centres: np.ndarray
    placed_kinds: np.ndarray
    placed_pixels: np.ndarray

    def __len__(self) -> int:
        return len(self.valid)


def layout_of(images: np.ndarray | torch.Tensor) -> tuple[str, int]:
    """('nchw', 'nhwc' or 'nhw', channel count) of a batch, or InputError naming the shape.

    uint8 batches are read channels-last first (how files hold them), floats channels-first
    (how models make them); either falls back to the other layout.
    """
    shape = tuple(images.shape)
    if len(shape) == 3 and shape[0] > 0:
        return "nhw", 1
    if len(shape) == 4 and shape[0] > 0:
        first, last = shape[1] in (1, 3), shape[-1] in (1, 3)
        if last and (images.dtype in (np.uint8, torch.uint8) or not first):
            return "nhwc", shape[-1]
        if first:
            return "nchw", shape[1]
    raise InputError(f"expected a non-empty batch N x C x H x W or N x H x W x C with C 1 or 3, "
                     f"got shape {shape}")


def value_range_of(
    images: np.ndarray | torch.Tensor, value_range: tuple[float, float] | None = None
) -> tuple[float, float]:
    """The batch's value range: value_range if given; else [0, 255] for uint8, and for
    floats [-1, 1] if any value is negative, else [0, 1] (pass value_range when a batch
    could be ambiguous, e.g. all grey)."""
    if value_range is not None:
        return value_range
    if images.dtype in (np.uint8, torch.uint8):
        return 0.0, 255.0
    return (-1.0, 1.0) if float(images.min()) < 0 else (0.0, 1.0)


def binarize(images: np.ndarray | torch.Tensor, threshold: float, grey: bool = False) -> np.ndarray:
    """Bool N x C x H x W of on-pixels; grey=True first averages RGB into one channel."""
    layout, channels = layout_of(images)
    average = grey and channels == 3
    axis = 1 if layout == "nchw" else 3
    if isinstance(images, torch.Tensor):  # compare where the batch lives; move only the bits
        images = images.detach()
        on = ((images.float().mean(dim=axis, keepdim=True) if average else images) > threshold).cpu().numpy()
    else:
        on = (images.mean(axis=axis, keepdims=True, dtype=np.float32) if average else images) > threshold
    if layout == "nhw":
        return on[:, None]
    if layout == "nhwc":
        return np.ascontiguousarray(on.transpose(0, 3, 1, 2))
    return on


def _components(planes: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Label P x H x W planes in one call and measure every component.

    Returns the per-component fields (with `plane`), and per on-pixel its component, plane
    and flat position in the plane. Empty planes are left out of the labelling: it costs the
    same per pixel whether or not anything is there.
    """
    _, height, width = planes.shape
    occupied = np.flatnonzero(planes.any(axis=(1, 2)))
    if len(occupied) < len(planes):
        planes = planes[occupied]
    labels, count = ndimage.label(planes, structure=_EIGHT_CONNECTED_PER_PLANE)
    where = np.flatnonzero(planes)
    label = labels.ravel()[where] - 1
    plane, rest = np.divmod(where, height * width)
    plane = occupied[plane]
    y, x = np.divmod(rest, width)
    pixels = np.bincount(label, minlength=count)
    centre = np.stack([np.bincount(label, x, count), np.bincount(label, y, count)], axis=1) / pixels[:, None]
    bbox = np.empty((count, 4), dtype=np.int64)
    bbox[:, :2] = (width, height)
    bbox[:, 2:] = -1
    np.minimum.at(bbox[:, 0], label, x)
    np.minimum.at(bbox[:, 1], label, y)
    np.maximum.at(bbox[:, 2], label, x)
    np.maximum.at(bbox[:, 3], label, y)
    dx = x - np.floor(centre[label, 0] + 0.5).astype(np.int64) + SQUARE_HALF
    dy = y - np.floor(centre[label, 1] + 0.5).astype(np.int64) + SQUARE_HALF
    near = (dx >= 0) & (dx < SQUARE_SIZE) & (dy >= 0) & (dy < SQUARE_SIZE)
    corner = np.zeros(len(label), dtype=bool)
    corner[near] = CORNERS[dy[near], dx[near]]
    plane_of = np.empty(count, dtype=np.int64)
    plane_of[label] = plane
    fields = {"plane": plane_of, "pixels": pixels, "centre": centre, "bbox": bbox,
              "corners": np.bincount(label, corner, count)}
    return fields, label, plane, rest


def _measure(on: np.ndarray, first_image: int) -> dict[str, np.ndarray]:
    """Objects of one chunk (n x C x H x W bool), one colour per channel.

    Colour images are labelled on the union of their channels first, which halves the work
    for shapes; a component holding pixels of two channels (touching objects of different
    colours) sends its image to a second labelling, channel by channel.
    """
    n, channels, height, width = on.shape
    if channels == 1:
        fields, *_ = _components(on[:, 0])
        fields["image"], fields["colour"] = fields.pop("plane"), np.zeros_like(fields["pixels"])
    else:
        fields, label, plane, rest = _components(on.any(axis=1))
        bits = on.reshape(n, channels, height * width)[plane, :, rest]  # on-pixels x channels
        per_channel = np.stack([np.bincount(label, bits[:, c], len(fields["pixels"]))
                                for c in range(channels)], axis=1)
        fields["image"], fields["colour"] = fields.pop("plane"), per_channel.argmax(axis=1)
        mixed = np.zeros(n, dtype=bool)
        mixed[fields["image"][(per_channel > 0).sum(axis=1) > 1]] = True
        keep = ~mixed[fields["image"]]
        fields = {key: value[keep] for key, value in fields.items()}
        if mixed.any():
            redo = np.flatnonzero(mixed)
            extra, *_ = _components(on[redo].reshape(-1, height, width))
            plane = extra.pop("plane")
            extra["image"], extra["colour"] = redo[plane // channels], plane % channels
            fields = {key: np.concatenate([value, extra[key]]) for key, value in fields.items()}
        order = np.argsort(fields["image"] * channels + fields["colour"], kind="stable")
        fields = {key: value[order] for key, value in fields.items()}
    fields["image"] = fields["image"] + first_image
    return fields


def decode(
    images: np.ndarray | torch.Tensor,
    value_range: tuple[float, float] | None = None,
    grey: bool = False,
) -> Objects:
    """Find every object in a batch (torch or numpy; N x C x H x W floats, N x H x W x C
    uint8, or N x H x W). See the module docstring for the threshold and connectivity;
    grey=True averages RGB to one channel first (squares saved as colour images)."""
    _, channels = layout_of(images)
    threshold = sum(value_range_of(images, value_range)) / 2
    parts = [
        _measure(binarize(images[start : start + CHUNK], threshold, grey), start)
        for start in range(0, len(images), CHUNK)
    ]
    fields = {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    square = 2 * fields.pop("corners") >= CORNERS.sum()
    kind = np.where(square, KINDS.index("square"), KINDS.index("circle")).astype(np.int8)
    colours = ("white",) if channels == 1 or grey else ("red", "green", "blue")
    return Objects(len(images), colours, kind=kind, **fields)


def size_ok(objects: Objects, tolerance: Tolerance = DEFAULT_TOLERANCE) -> np.ndarray:
    """Per object: bounding box and pixel count within tolerance of the ideal for its kind."""
    width = objects.bbox[:, 2] - objects.bbox[:, 0] + 1
    height = objects.bbox[:, 3] - objects.bbox[:, 1] + 1
    ideal = np.asarray(IDEAL_PIXELS)[objects.kind]
    return (
        (np.abs(width - SQUARE_SIZE) <= tolerance.side)
        & (np.abs(height - SQUARE_SIZE) <= tolerance.side)
        & (np.abs(objects.pixels - ideal) <= tolerance.pixels * ideal)
    )


def validate(objects: Objects, dataset: str, tolerance: Tolerance = DEFAULT_TOLERANCE) -> Decoded:
    """Which samples hold exactly what the dataset allows, and where their objects are.

    reason is the first failed check in REASONS order: blank (no object at all),
    object_count (wrong number of objects of some colour), size, shape (a circle where
    squares needs a square).
    """
    if dataset not in DATASETS:
        raise InputError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    wanted = _expected_counts(dataset, objects.colours)
    counts = objects.counts()
    n = objects.n_images
    bad_size = np.bincount(objects.image[~size_ok(objects, tolerance)], minlength=n) > 0
    bad_shape = np.zeros(n, dtype=bool)
    if dataset == "squares":
        bad_shape = np.bincount(objects.image[objects.kind != KINDS.index("square")], minlength=n) > 0
    reason = np.zeros(n, dtype=np.int8)
    checks = [counts.sum(axis=1) == 0, (counts != wanted).any(axis=1), bad_size, bad_shape]
    for code, failed in enumerate(checks, start=1):  # REASONS order: the first failure wins
        reason[(reason == 0) & failed] = code
    valid = reason == 0
    slots = [colour for colour, count in enumerate(wanted) if count]
    centres = np.full((n, len(slots), 2), np.nan)
    kinds = np.full((n, len(slots)), -1, dtype=np.int8)
    keep = valid[objects.image]
    for slot, colour in enumerate(slots):
        rows = keep & (objects.colour == colour)
        centres[objects.image[rows], slot] = objects.centre[rows]
        kinds[objects.image[rows], slot] = objects.kind[rows]
    big = objects.pixels >= MIN_PIXELS
    big_counts = np.bincount(objects.image[big] * len(objects.colours) + objects.colour[big],
                             minlength=n * len(objects.colours)).reshape(n, len(objects.colours))
    placed = (big_counts == wanted).all(axis=1)
    placed_centres = np.full((n, len(slots), 2), np.nan)
    placed_kinds = np.full((n, len(slots)), -1, dtype=np.int8)
    placed_pixels = np.zeros((n, len(slots)), dtype=np.int64)
    keep = placed[objects.image] & big
    for slot, colour in enumerate(slots):
        rows = keep & (objects.colour == colour)
        placed_centres[objects.image[rows], slot] = objects.centre[rows]
        placed_kinds[objects.image[rows], slot] = objects.kind[rows]
        placed_pixels[objects.image[rows], slot] = objects.pixels[rows]
    return Decoded(dataset, valid, reason, centres, kinds, placed, placed_centres, placed_kinds,
                   placed_pixels)


def _expected_counts(dataset: str, colours: tuple[str, ...]) -> np.ndarray:
    if dataset == "squares":
        if colours != ("white",):
            raise InputError("squares images must be decoded as one grey channel")
        return np.array([1])
    if colours != ("red", "green", "blue"):
        raise InputError("shapes images need 3 channels (red and blue objects), got 1")
    wanted = np.zeros(3, dtype=np.int64)
    wanted[list(COLOUR_CHANNELS)] = 1
    return wanted


def decode_samples(
    images: np.ndarray | torch.Tensor,
    dataset: str = "squares",
    value_range: tuple[float, float] | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
) -> Decoded:
    """Decode and validate a batch for a dataset; RGB squares images are averaged to grey.
    InputError for a batch the dataset cannot hold (another size; one channel for shapes),
    which would otherwise measure as all blank."""
    if dataset not in DATASETS:
        raise InputError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    layout, channels = layout_of(images)
    height, width = images.shape[2:4] if layout == "nchw" else images.shape[1:3]
    if (height, width) != (CANVAS, CANVAS):
        raise InputError(f"{dataset} images are {CANVAS} x {CANVAS}; got {height} x {width}")
    return validate(decode(images, value_range, grey=dataset == "squares"), dataset, tolerance)
