import pytest
import torch
from torch import nn

from gen.coordconv import (
    AddCoords,
    CoordConv1d,
    CoordConv2d,
    CoordConv3d,
    CoordConvTranspose2d,
    coordconv_form,
    coordinate_grid,
    make_conv,
)


def test_rank2_values_on_non_square_map():
    out = AddCoords(rank=2)(torch.zeros(2, 3, 3, 5))
    assert out.shape == (2, 5, 3, 5)
    rows, cols = out[0, 3], out[0, 4]
    assert torch.allclose(rows[:, 0], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(cols[0], torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]))
    assert torch.equal(rows, rows[:, :1].expand(3, 5))
    assert torch.equal(cols, cols[:1].expand(3, 5))


def test_input_channels_are_kept_first():
    x = torch.randn(2, 3, 4, 6)
    assert torch.equal(AddCoords(rank=2)(x)[:, :3], x)


def test_radius_channel_is_distance_from_centre():
    out = AddCoords(rank=2, with_r=True)(torch.zeros(1, 1, 3, 5))
    r = out[0, 3]
    assert torch.allclose(r, torch.sqrt(out[0, 1] ** 2 + out[0, 2] ** 2))
    assert r[1, 2] == 0 and torch.isclose(r[0, 0], torch.tensor(2.0).sqrt())


def test_rank1_and_rank3():
    out1 = AddCoords(rank=1)(torch.zeros(1, 2, 5))
    assert torch.allclose(out1[0, 2], torch.linspace(-1, 1, 5))
    out3 = AddCoords(rank=3, with_r=True)(torch.zeros(1, 1, 2, 3, 4))
    assert out3.shape == (1, 5, 2, 3, 4)
    assert torch.allclose(out3[0, 1, :, 0, 0], torch.tensor([-1.0, 1.0]))
    assert torch.allclose(out3[0, 2, 0, :, 0], torch.tensor([-1.0, 0.0, 1.0]))
    assert torch.allclose(out3[0, 3, 0, 0, :], torch.linspace(-1, 1, 4))


def test_length_one_axis_is_zero():
    assert torch.equal(coordinate_grid((1, 3))[0], torch.zeros(1, 3))


def test_wrong_rank_input_is_rejected():
    with pytest.raises(ValueError, match="4-D"):
        AddCoords(rank=2)(torch.zeros(1, 2, 3))


def test_grid_follows_dtype_and_is_cached():
    layer = AddCoords(rank=2)
    out = layer(torch.zeros(1, 1, 4, 4, dtype=torch.float64))
    assert out.dtype == torch.float64
    layer(torch.zeros(3, 1, 4, 4, dtype=torch.float64))
    assert len(layer._cache) == 1
    layer(torch.zeros(1, 1, 4, 4, dtype=torch.bfloat16))
    assert len(layer._cache) == 2


def test_channels_last_is_preserved():
    x = torch.randn(2, 3, 5, 7, requires_grad=True)
    add_coords = AddCoords(rank=2, with_r=True)
    out = add_coords(x.to(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(out, add_coords(x))
    (grad,) = torch.autograd.grad(out[:, :3].sum() + out[:, 3:].sum(), x)
    assert torch.equal(grad, torch.ones_like(x))


@pytest.mark.parametrize(
    "coord_cls, plain_cls, shape",
    [
        (CoordConv1d, nn.Conv1d, (2, 3, 9)),
        (CoordConv2d, nn.Conv2d, (2, 3, 7, 9)),
        (CoordConv3d, nn.Conv3d, (2, 3, 5, 6, 7)),
        (CoordConvTranspose2d, nn.ConvTranspose2d, (2, 3, 7, 9)),
    ],
)
def test_zero_coordinate_weights_give_the_plain_layer(coord_cls, plain_cls, shape):
    torch.manual_seed(0)
    plain = plain_cls(3, 4, 3, padding=1)
    coord = coord_cls(3, 4, 3, padding=1)
    with torch.no_grad():
        coord.weight.zero_()
        if coord_cls is CoordConvTranspose2d:
            coord.weight[:3] = plain.weight
        else:
            coord.weight[:, :3] = plain.weight
        coord.bias.copy_(plain.bias)
    x = torch.randn(shape)
    assert torch.allclose(coord(x), plain(x), atol=1e-6)


def test_state_dict_shapes():
    conv = CoordConv2d(3, 8, 5, with_r=True)
    assert conv.state_dict()["weight"].shape == (8, 6, 5, 5)
    deconv = CoordConvTranspose2d(3, 8, 4, stride=2)
    assert deconv.state_dict()["weight"].shape == (5, 8, 4, 4)
    assert set(conv.state_dict()) == {"weight", "bias"}


def test_gradients_reach_input_and_coordinate_weights():
    conv = CoordConv2d(2, 3, 3, padding=1)
    x = torch.randn(2, 2, 6, 5, requires_grad=True)
    conv(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert conv.weight.grad[:, 2:].abs().sum() > 0


def test_coordconv_sees_position_plain_conv_does_not():
    x = torch.ones(1, 1, 6, 6)
    plain = nn.Conv2d(1, 1, 1)
    coord = CoordConv2d(1, 1, 1)
    with torch.no_grad():
        plain.weight.fill_(1.0)
        coord.weight.fill_(1.0)
    assert torch.unique(plain(x)).numel() == 1
    assert torch.unique(coord(x)).numel() > 1


def test_make_conv_picks_layer_from_flag():
    assert type(make_conv(3, 4, 3)) is nn.Conv2d
    assert isinstance(make_conv(3, 4, 3, coord=True), CoordConv2d)
    assert isinstance(make_conv(3, 4, 4, coord=True, transpose=True, stride=2), CoordConvTranspose2d)
    assert isinstance(make_conv(3, 4, 3, coord=True, rank=1), CoordConv1d)
    assert make_conv(3, 4, 3, coord=True, with_r=True).weight.shape[1] == 6
    with pytest.raises(ValueError):
        make_conv(3, 4, 3, coord=True, groups=3)


def test_uses_coords_placements():
    from gen.coordconv import uses_coords

    assert [uses_coords("all", i) for i in range(3)] == [True, True, True]
    assert [uses_coords("first", i) for i in range(3)] == [True, False, False]
    assert [uses_coords("none", i) for i in range(3)] == [False, False, False]
    with pytest.raises(ValueError, match="coord_layers"):
        uses_coords("last", 0)


LAYER_CASES = [  # (class, input shape, keyword arguments): every rank, stride, padding, dilation
    (CoordConv1d, (3, 2, 11), {"stride": 2, "padding": 1}),
    (CoordConv1d, (3, 2, 11), {"dilation": 2, "padding": 2, "padding_mode": "reflect"}),
    (CoordConv2d, (3, 2, 9, 7), {"stride": 2, "padding": 1}),
    (CoordConv2d, (3, 2, 9, 7), {"dilation": 2, "padding": 3}),
    (CoordConv2d, (3, 2, 9, 7), {"padding": 1, "padding_mode": "circular"}),
    (CoordConv3d, (2, 2, 5, 6, 7), {"stride": (1, 2, 2), "padding": 1}),
    (CoordConvTranspose2d, (3, 2, 5, 6), {"stride": 2, "padding": 1}),
    (CoordConvTranspose2d, (3, 2, 5, 6), {"stride": 3, "padding": 2, "dilation": 2, "output_padding": 1}),
]


@pytest.mark.parametrize("with_r", [False, True])
@pytest.mark.parametrize("coord_cls, shape, kwargs", LAYER_CASES)
def test_position_bias_form_equals_concatenating_coordinates(coord_cls, shape, kwargs, with_r):
    torch.manual_seed(0)
    layer = coord_cls(2, 4, 3, with_r=with_r, **kwargs).double()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)

    def outputs_and_gradients(forward):
        out = forward(x)
        upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
        grads = torch.autograd.grad((out * upstream).sum(), [x, layer.weight, layer.bias])
        return out, grads

    out, grads = outputs_and_gradients(layer)
    expected_out, expected_grads = outputs_and_gradients(layer.concatenating_forward)
    assert torch.allclose(out, expected_out, atol=1e-5)
    for grad, expected in zip(grads, expected_grads):
        assert torch.allclose(grad, expected, atol=1e-5)


def test_transposed_position_bias_honours_output_size():
    layer = CoordConvTranspose2d(2, 3, 4, stride=2, padding=1)
    x = torch.randn(2, 2, 5, 5)
    for size in ([11, 11], [10, 10], [11, 10], [10, 10]):  # one input, an entry of patches per size
        out = layer(x, output_size=size)
        assert out.shape == (2, 3, *size)
        expected = nn.ConvTranspose2d.forward(layer, layer.add_coords(x), output_size=size)
        assert torch.allclose(out, expected, atol=1e-5), size


def test_output_size_is_refused_by_a_plain_convolution():
    with pytest.raises(ValueError, match="output_size"):
        CoordConv2d(2, 3, 3)(torch.randn(1, 2, 5, 5), output_size=[5, 5])


def test_channels_last_input_gives_channels_last_output():
    layer = CoordConv2d(3, 8, 4, stride=2, padding=1)
    x = torch.randn(4, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    out = layer(x)
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(out, layer.concatenating_forward(x), atol=1e-5)


@pytest.mark.parametrize("with_r", [False, True])
@pytest.mark.parametrize("coord_cls, shape, kwargs", LAYER_CASES)
def test_double_backward_equals_concatenating_coordinates(coord_cls, shape, kwargs, with_r):
    """R1 differentiates the input gradient's norm again: the in-place position add must
    give the textbook layer's second-order gradients too."""
    torch.manual_seed(0)
    layer = coord_cls(2, 4, 3, with_r=with_r, **kwargs).double()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)

    def r1_gradients(forward):
        (input_grad,) = torch.autograd.grad(torch.tanh(forward(x)).sum(), x, create_graph=True)
        return torch.autograd.grad(input_grad.square().sum(), [layer.weight, layer.bias])

    expected_gradients = r1_gradients(layer.concatenating_forward)
    for grad, expected in zip(r1_gradients(layer), expected_gradients):
        assert torch.allclose(grad, expected, atol=1e-8)


def test_bf16_autocast_matches_concatenating_coordinates():
    torch.manual_seed(0)
    layer = CoordConv2d(8, 16, 4, stride=2, padding=1)
    x = torch.randn(4, 8, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
        expected = layer.concatenating_forward(x)
    assert out.dtype == expected.dtype == torch.bfloat16
    assert torch.allclose(out.float(), expected.float(), atol=0.05, rtol=0.02)
    out.float().sum().backward()
    assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()


def test_a_grid_first_made_in_inference_mode_serves_training():
    layer = CoordConv2d(3, 4, 3, padding=1)
    x = torch.randn(2, 3, 8, 8)
    with torch.inference_mode():
        inferred = layer(x)
    trained = layer(x)
    trained.sum().backward()  # saving an inference-mode grid for backward would raise
    assert torch.allclose(inferred, trained, atol=1e-6)
    assert layer.weight.grad is not None


def test_off_the_cpu_the_layer_concatenates(monkeypatch):
    layer = CoordConvTranspose2d(2, 3, 4, stride=2, padding=1).to("meta")

    def refuse(*args, **kwargs):
        raise AssertionError("the position-bias form ran off the CPU")

    monkeypatch.setattr(layer, "position_bias_forward", refuse)
    out = layer(torch.empty(2, 2, 5, 5, device="meta"), output_size=[11, 11])
    assert out.shape == (2, 3, 11, 11) and out.device.type == "meta"


def test_coordconv_form_names_the_form_each_device_gets():
    assert coordconv_form("cpu") == coordconv_form(torch.device("cpu")) == "position bias"
    assert coordconv_form("cuda") == coordconv_form("meta") == "concatenating"


def test_coordinate_patches_are_cached_per_map_size():
    layer = CoordConv2d(3, 4, 3, stride=2, padding=1)
    first = layer.coordinate_patches((8, 8), (), torch.device("cpu"), torch.float32)
    assert first.shape == (2 * 9, 4 * 4)
    assert layer.coordinate_patches((8, 8), (), torch.device("cpu"), torch.float32) is first
    assert layer.coordinate_patches((6, 8), (), torch.device("cpu"), torch.float32).shape == (18, 3 * 4)
    # the centre tap of output position (0, 0) reads input pixel (0, 0): row and column -1
    assert first.view(2, 9, 16)[:, 4, 0].tolist() == [-1.0, -1.0]
