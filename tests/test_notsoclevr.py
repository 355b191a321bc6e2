import pytest
import torch

from gen.data.notsoclevr import (
    NotSoClevr,
    make_shapes,
    make_squares,
    one_hot_maps,
    render_squares,
)
from gen.images import to_model_range


def test_squares_counts_and_centre_range():
    squares = make_squares()
    assert len(squares) == 3136
    assert squares.images.shape == (3136, 1, 64, 64)
    assert squares.centres.min() == 4 and squares.centres.max() == 59
    assert len(set(map(tuple, squares.centres.tolist()))) == 3136


def test_every_square_is_fully_visible_and_exactly_9x9():
    squares = make_squares()
    on = squares.images[:, 0] > 0
    assert torch.all(on.sum(dim=(1, 2)) == 81)
    assert set(squares.images.unique().tolist()) == {0, 255}
    for i in (0, 57, 3135):
        x, y = squares.centres[i].tolist()
        assert on[i, y - 4 : y + 5, x - 4 : x + 5].all()


def test_one_hot_maps_mark_the_centre():
    squares = make_squares()
    maps = squares.labels["onehot"]
    assert torch.all(maps.sum(dim=(1, 2)) == 1)
    x, y = squares.centres[100].tolist()
    assert maps[100, y, x] == 1


@pytest.mark.parametrize("split, n_test", [("all", 0), ("uniform", 627), ("quadrant", 729)])
def test_split_sizes(split, n_test):
    test = make_squares(split).labels["test"]
    assert int(test.sum()) == n_test


def test_quadrant_split_holds_out_bottom_right():
    squares = make_squares("quadrant")
    test = squares.part("test")
    train = squares.part("train")
    assert len(train) == 2407
    assert torch.all((test.centres > 32).all(dim=1))
    assert not torch.any((train.centres > 32).all(dim=1))


def test_uniform_split_is_seeded_disjoint_and_sized():
    a = make_squares("uniform", test_fraction=0.25, seed=20202)
    b = make_squares("uniform", test_fraction=0.25, seed=20202)
    c = make_squares("uniform", test_fraction=0.25, seed=1)
    assert torch.equal(a.labels["test"], b.labels["test"])
    assert not torch.equal(a.labels["test"], c.labels["test"])
    train = set(map(tuple, a.part("train").centres.tolist()))
    test = set(map(tuple, a.part("test").centres.tolist()))
    assert not train & test and len(train | test) == 3136 and len(test) == 784


def test_bad_split_arguments():
    with pytest.raises(ValueError, match="unknown split"):
        make_squares("diagonal")
    with pytest.raises(ValueError, match="test fraction"):
        make_squares("uniform", test_fraction=1.5)


def test_shapes_constraints_hold():
    shapes = make_shapes(500, seed=3)
    assert shapes.images.shape == (500, 3, 64, 64)
    centres = shapes.centres.float()
    assert centres.min() >= 10 and centres.max() <= 53
    assert torch.all((centres[:, 0] - centres[:, 1]).norm(dim=1) >= 20)
    assert torch.all(shapes.images[:, 1] == 0)
    red, blue = shapes.images[:, 0] > 0, shapes.images[:, 2] > 0
    assert not torch.any(red & blue)
    sizes = torch.stack([red.sum(dim=(1, 2)), blue.sum(dim=(1, 2))], dim=1)
    square = shapes.labels["kinds"] == 0
    assert torch.all(sizes[square] == 81)
    assert torch.all((sizes[~square] > 50) & (sizes[~square] < 81))
    assert 0.4 < square.float().mean() < 0.6


def test_shapes_object_sits_at_its_centre():
    shapes = make_shapes(20, seed=0)
    for i in range(20):
        for obj, channel in enumerate((0, 2)):
            x, y = shapes.centres[i, obj].tolist()
            ys, xs = torch.nonzero(shapes.images[i, channel], as_tuple=True)
            assert xs.float().mean() == pytest.approx(x) and ys.float().mean() == pytest.approx(y)


def test_shapes_same_seed_same_data():
    assert torch.equal(make_shapes(64, seed=7).images, make_shapes(64, seed=7).images)
    assert not torch.equal(make_shapes(64, seed=7).images, make_shapes(64, seed=8).images)


def test_npz_round_trip(tmp_path):
    squares = make_squares("uniform")
    squares.save(tmp_path / "s.npz")
    loaded = NotSoClevr.load(tmp_path / "s.npz")
    assert loaded.name == "squares"
    assert torch.equal(loaded.images, squares.images)
    assert torch.equal(loaded.labels["test"], squares.labels["test"])
    assert not list(tmp_path.glob(".*tmp*"))


def test_dataset_items_are_model_range_floats():
    image, centre = make_squares()[5]
    assert image.dtype == torch.float32 and image.min() == -1 and image.max() == 1
    assert centre.tolist() == [9, 4]


def test_render_and_one_hot_helpers_agree():
    centres = torch.tensor([[10, 20]])
    image = render_squares(centres)[0, 0]
    assert image[20, 10] == 255 and image[20, 15] == 0 and image[24, 14] == 255
    assert one_hot_maps(centres)[0, 20, 10] == 1


def test_image_range_helpers_round_trip():
    from gen.images import from_uint8, to_uint8

    pixels = torch.tensor([0, 1, 127, 128, 254, 255], dtype=torch.uint8).view(1, 1, 2, 3)
    floats = to_model_range(pixels)
    assert floats.dtype == torch.float32 and floats.shape == pixels.shape
    assert floats.min() == -1 and floats.max() == 1
    assert (to_uint8(floats) == pixels.permute(0, 2, 3, 1).numpy()).all()
    assert torch.equal(from_uint8(pixels.permute(0, 2, 3, 1)), floats)

