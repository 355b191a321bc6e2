import numpy as np
import pytest
import torch

from gen.data import make_shapes, make_squares
from gen.geometry import (
    IDEAL_PIXELS,
    REASONS,
    Tolerance,
    decode,
    decode_samples,
    value_range_of,
)


def canvas(n: int = 1, channels: int = 1) -> np.ndarray:
    return np.zeros((n, 64, 64, channels), dtype=np.uint8)


def square(images, index, x, y, side=9, channel=0, value=255):
    """Paint a side x side block whose top-left corner is (x - 4, y - 4), clipped to the canvas."""
    images[index, max(y - 4, 0) : y - 4 + side, max(x - 4, 0) : x - 4 + side, channel] = value


def test_ideal_pixel_counts_match_the_renderer():
    shapes = make_shapes(200, seed=3)
    on = shapes.images > 127
    for kind, ideal in enumerate(IDEAL_PIXELS):
        rows = shapes.labels["kinds"][:, 0] == kind
        assert torch.all(on[rows, 0].sum(dim=(1, 2)) == ideal)


@pytest.mark.parametrize("layout", ["uint8 nhwc", "uint8 nchw torch", "float [-1, 1] torch",
                                    "float [0, 1] numpy", "uint8 nhw"])
def test_real_squares_decode_exactly_in_every_layout(layout):
    squares = make_squares()
    images = {
        "uint8 nhwc": squares.images.permute(0, 2, 3, 1).numpy(),
        "uint8 nchw torch": squares.images,
        "float [-1, 1] torch": squares.float_images(),
        "float [0, 1] numpy": squares.images.float().numpy() / 255,
        "uint8 nhw": squares.images[:, 0].numpy(),
    }[layout]
    decoded = decode_samples(images, "squares")
    assert decoded.valid.all()
    assert np.array_equal(decoded.centres[:, 0], squares.centres.numpy())
    assert np.all(decoded.kinds == 0)


def test_real_shapes_decode_exactly():
    shapes = make_shapes(3000, seed=1)
    decoded = decode_samples(shapes.float_images(), "shapes")
    assert decoded.valid.all()
    assert np.array_equal(decoded.centres, shapes.centres.numpy().astype(float))
    assert np.array_equal(decoded.kinds, shapes.labels["kinds"].numpy())


def test_objects_have_hand_computed_stats_and_never_join_across_images():
    images = canvas(3, 3)
    images[0, 10:12, 20:23, 0] = 255  # red 3 x 2 block: x 20..22, y 10..11
    images[0, 40, 5, 2] = 255  # one blue pixel
    images[0, 41, 6, 2] = 255  # diagonal neighbour: same object (8-connected)
    images[1, 10:12, 20:23, 0] = 255  # the same block in the next image is another object
    objects = decode(images)
    assert objects.colours == ("red", "green", "blue")
    assert len(objects) == 3
    assert objects.image.tolist() == [0, 0, 1]
    assert objects.colour.tolist() == [0, 2, 0]
    assert objects.pixels.tolist() == [6, 2, 6]
    assert np.allclose(objects.centre[0], (21, 10.5))
    assert np.allclose(objects.centre[1], (5.5, 40.5))
    assert objects.bbox[0].tolist() == [20, 10, 22, 11]
    assert objects.bbox[1].tolist() == [5, 40, 6, 41]
    assert objects.counts().tolist() == [[1, 0, 1], [1, 0, 0], [0, 0, 0]]


def test_colour_objects_equal_channel_by_channel_labelling():
    rng = np.random.default_rng(0)
    images = (rng.random((300, 64, 64, 3)) > 0.97).astype(np.uint8) * 255  # touching colours abound
    square(images, 0, 20, 20, channel=0)
    square(images, 0, 24, 24, channel=2)  # overlapping red and blue: magenta where they meet
    together = decode(images)
    fields = []
    for c in range(3):
        alone = decode(images[..., c : c + 1])
        fields.append(np.column_stack([alone.image, np.full(len(alone), c), alone.pixels,
                                       alone.centre, alone.bbox, alone.kind]))
    expected = np.concatenate(fields)
    expected = expected[np.lexsort((expected[:, 1], expected[:, 0]), axis=0)]
    got = np.column_stack([together.image, together.colour, together.pixels, together.centre,
                           together.bbox, together.kind])
    order = np.lexsort((got[:, 1], got[:, 0]))
    assert np.array_equal(got[order], expected)
    assert np.array_equal(got, got[order])  # rows come ordered by image, then colour


def test_overlapping_red_and_blue_squares_are_two_whole_objects():
    images = canvas(1, 3)
    square(images, 0, 20, 20, channel=0)
    square(images, 0, 24, 24, channel=2)
    objects = decode(images)
    assert objects.colour.tolist() == [0, 2] and objects.pixels.tolist() == [81, 81]
    assert objects.centre.tolist() == [[20, 20], [24, 24]]


def test_threshold_is_the_middle_of_the_range():
    images = np.zeros((2, 1, 64, 64), dtype=np.float32)
    images[0, 0, 10:19, 10:19] = 0.6
    images[1, 0, 10:19, 10:19] = 0.4
    assert value_range_of(images) == (0.0, 1.0)
    assert decode_samples(images, "squares").valid.tolist() == [True, False]
    assert value_range_of(images - 1) == (-1.0, 1.0)
    assert decode_samples(images - 1, "squares").valid.tolist() == [False, False]
    # an explicit range overrides the guess: 0.4 and 0.6 are both above 0 in [-1, 1]
    assert decode_samples(images, "squares", value_range=(-1, 1)).valid.tolist() == [True, True]


def test_square_validity_reasons():
    images = canvas(8)
    square(images, 0, 30, 30)  # valid
    square(images, 1, 30, 30, side=7)  # too small
    square(images, 2, 30, 30, side=11)  # too large
    square(images, 3, 20, 20)
    square(images, 3, 45, 45)  # two squares
    # 4 stays blank
    yy, xx = np.mgrid[:64, :64]
    images[5, (xx - 30) ** 2 + (yy - 30) ** 2 <= 4.5**2, 0] = 255  # a circle
    images[6] = np.random.default_rng(0).integers(0, 256, (64, 64, 1), dtype=np.uint8)  # noise
    square(images, 7, 3, 30)  # cut by the left edge: 8 x 9 = 72 pixels
    decoded = decode_samples(images, "squares")
    reasons = [REASONS[code] for code in decoded.reason]
    assert reasons == ["valid", "size", "size", "object_count", "blank", "shape", "object_count", "size"]
    assert decoded.valid.tolist() == [True] + [False] * 7
    assert np.isnan(decoded.centres[1:]).all() and (decoded.kinds[1:] == -1).all()


def test_tolerance_bounds_are_as_documented():
    images = canvas(5)
    square(images, 0, 30, 30)
    images[0, 26, 26, 0] = 0  # corner missing: 80 pixels, still called a square
    square(images, 1, 30, 30)
    images[1, 30, 35, 0] = 255  # one pixel sticking out: 82 pixels, box 10 x 9
    square(images, 2, 30, 30, side=10)  # 100 pixels: beyond 10% of 81
    images[3, 26:35, 26:37, 0] = 255  # 11 x 9: one pixel wider than the side tolerance
    square(images, 4, 30, 30)  # exact
    assert decode_samples(images, "squares").valid.tolist() == [True, True, False, False, True]
    loose = Tolerance(side=1, pixels=0.25)
    assert decode_samples(images, "squares", tolerance=loose).valid.tolist() == [True] * 3 + [False, True]
    looser = Tolerance(side=2, pixels=0.25)
    assert decode_samples(images, "squares", tolerance=looser).valid.all()
    strict = Tolerance(side=0, pixels=0.0)
    assert decode_samples(images, "squares", tolerance=strict).valid.tolist() == [False] * 4 + [True]


def test_shapes_validity():
    images = canvas(5, 3)
    for i in range(5):
        square(images, i, 15, 15, channel=0)
        square(images, i, 45, 40, channel=2)
    square(images, 1, 45, 40, channel=2, value=0)  # blue missing
    square(images, 2, 30, 50, channel=1)  # a green object
    square(images, 3, 45, 40, channel=2, value=0)
    square(images, 3, 45, 40, side=6, channel=2)  # blue too small
    square(images, 4, 45, 40, channel=0)  # a red square under the blue one: two reds
    decoded = decode_samples(images, "shapes")
    assert [REASONS[code] for code in decoded.reason] == ["valid", "object_count", "object_count",
                                                          "size", "object_count"]
    assert decoded.centres[0].tolist() == [[15, 15], [45, 40]]


def test_rgb_squares_are_read_as_grey_and_grey_shapes_are_refused():
    squares = make_squares()
    rgb = squares.images.repeat(1, 3, 1, 1)
    assert decode_samples(rgb, "squares").valid.all()
    with pytest.raises(ValueError, match="3 channels"):
        decode_samples(squares.images, "shapes")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="N x C x H x W"):
        decode(np.zeros((4, 2, 64, 64)))
    with pytest.raises(ValueError, match="non-empty"):
        decode(np.zeros((0, 64, 64, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="unknown dataset"):
        decode_samples(canvas(), "mnist")
