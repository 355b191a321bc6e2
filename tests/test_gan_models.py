from dataclasses import asdict, replace

import numpy as np
import pytest
import torch
from torch import nn

from gen.checkpoint import Checkpoint
from gen.coordconv import AddCoords, coordinate_grid
from gen.data.notsoclevr import KINDS
from gen.errors import InputError
from gen.gan.config import (
    GAN_PRESETS,
    DiscriminatorConfig,
    GeneratorConfig,
    gan_preset,
    preset_label,
    preset_name,
)
from gen.gan.losses import discriminator_loss, generator_loss, r1_penalty
from gen.gan.models import Discriminator, MinibatchStd, build_generator
from gen.gan.task import GANTask
from gen.geometry import decode, size_ok


def count_coord_layers(module: torch.nn.Module) -> int:
    return sum(isinstance(m, AddCoords) for m in module.modules())


@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("arch", ["dcgan", "tiled"])
def test_generator_shapes_and_range(resolution, arch):
    config = GeneratorConfig(arch=arch, resolution=resolution, channels=3, latent_dim=8, width=4)
    images = build_generator(config)(torch.randn(2, 8))
    assert images.shape == (2, 3, resolution, resolution)
    assert images.abs().max() <= 1


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_discriminator_gives_one_logit_per_image(resolution):
    disc = Discriminator(DiscriminatorConfig(resolution=resolution, channels=3, width=4))
    assert disc(torch.randn(5, 3, resolution, resolution)).shape == (5,)


@pytest.mark.parametrize("kernel_size", [3, 4, 5, 6])
def test_discriminator_kernel_sizes_halve_the_map_exactly(kernel_size):
    disc = Discriminator(DiscriminatorConfig(width=4, kernel_size=kernel_size, coord_layers="all"))
    sizes = []
    disc.layers[0].register_forward_hook(lambda module, args, out: sizes.append(out.shape[-1]))
    assert disc(torch.randn(2, 1, 64, 64)).shape == (2,)
    assert sizes == [32] and disc.layers[0].kernel_size == (kernel_size, kernel_size)
    with pytest.raises(ValueError, match="kernel_size"):
        DiscriminatorConfig(kernel_size=1)


@pytest.mark.parametrize("layers, g_expected, d_expected", [("none", 0, 0), ("first", 1, 1), ("all", 4, 4)])
def test_coordconv_placement(layers, g_expected, d_expected):
    gen = build_generator(GeneratorConfig(width=4, coord_layers=layers))
    disc = Discriminator(DiscriminatorConfig(width=4, coord_layers=layers))
    assert count_coord_layers(gen) == g_expected
    assert count_coord_layers(disc) == d_expected


def test_unknown_settings_are_rejected():
    with pytest.raises(ValueError, match="resolution"):
        build_generator(GeneratorConfig(resolution=48))
    with pytest.raises(ValueError, match="coord_layers"):
        build_generator(GeneratorConfig(coord_layers="some"))
    with pytest.raises(ValueError, match="arch"):
        build_generator(GeneratorConfig(arch="stylegan"))


def test_tiled_generator_first_layer_equals_1x1_conv_on_tiled_latent():
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=3, width=2, mapping_layers=2)
    gen = build_generator(config)
    z = torch.randn(2, 3)
    features = gen.mapping(z)
    assert features.shape == (2, 8)  # two mapping layers of width 4w
    coords = coordinate_grid((32, 32))
    tiled = torch.cat([features[:, :, None, None].expand(2, 8, 32, 32), coords[None].expand(2, 2, 32, 32)], 1)
    weight = torch.cat([gen.latent_in.weight, gen.coords_in.weight], 1)
    reference = torch.nn.functional.conv2d(tiled, weight[:, :, None, None], gen.latent_in.bias)
    (first,) = gen.first_layers(features)
    ours = first.permute(0, 3, 1, 2) / gen.config.first_gain
    assert torch.allclose(ours, reference, atol=1e-5)


def test_tiled_mapping_ends_in_tanh_when_asked():
    """The tanh bounds what sets object positions, so the canvas edges are reachable."""
    torch.manual_seed(0)
    z = torch.randn(256, 3) * 10
    config = GeneratorConfig(arch="tiled", latent_dim=3, width=2, mapping_layers=2, mapping_tanh=True)
    tanh_mapping = build_generator(config).mapping
    relu_mapping = build_generator(replace(config, mapping_tanh=False)).mapping
    assert [type(m) for m in tanh_mapping[1::2]] == [nn.ReLU, nn.Tanh]
    bounded, unbounded = tanh_mapping(z), relu_mapping(z)
    assert bounded.abs().max() <= 1 and bounded.min() < 0
    assert unbounded.min() >= 0 and unbounded.max() > 1
    with pytest.raises(ValueError, match="mapping_tanh"):
        build_generator(replace(config, mapping_layers=0))


def test_tiled_checkpoint_config_without_mapping_tanh_loads_the_relu_mapping(tiny_run):
    """Format-1 checkpoints saved before the field existed keep the architecture they were
    trained with; format 2 stores every field."""
    tiled = GAN_PRESETS["tiled"].model
    saved = asdict(tiled)
    del saved["generator"]["mapping_tanh"]
    payload = {"format": 1, "kind": "gan", "config": {"run": asdict(tiny_run()), "model": saved}, "step": 1,
               "task": {}, "rng": {}, "data": {}}
    config = Checkpoint.from_payload(payload).model
    assert isinstance(build_generator(config.generator).mapping[-1], nn.ReLU)
    assert isinstance(build_generator(tiled.generator).mapping[-1], nn.Tanh)


def test_tiled_generator_starts_with_visible_variation():
    """He init and the first-layer gain: an untrained tiled G draws images with structure,
    not a flat field (torch's default init gave a per-image std of 0.007)."""
    torch.manual_seed(0)
    gen = build_generator(GAN_PRESETS["tiled"].model.generator)
    images = gen(torch.randn(8, 64))
    assert images.flatten(1).std(1).min() > 0.05


def test_tiled_generator_output_depends_on_position_only_through_coords():
    gen = build_generator(GeneratorConfig(arch="tiled", resolution=32, latent_dim=3, width=2))
    with torch.no_grad():
        gen.coords_in.weight.zero_()
    image = gen(torch.randn(1, 3))
    assert torch.allclose(image, image[..., :1, :1].expand_as(image))


def test_minibatch_std_feature():
    x = torch.stack([torch.zeros(2, 3, 3), torch.full((2, 3, 3), 2.0)])
    out = MinibatchStd()(x)
    assert out.shape == (2, 3, 3, 3)
    assert torch.allclose(out[:, 2], torch.ones(2, 3, 3))


def test_losses_on_known_logits():
    real, fake = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -2.0])
    softplus = torch.nn.functional.softplus
    expected = (softplus(torch.tensor(0.0)) + softplus(torch.tensor(-2.0))).item()
    assert discriminator_loss("nonsaturating", real, fake).item() == pytest.approx(expected)
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx((1 + 0) / 2 + (1 + 0) / 2)
    assert generator_loss("hinge", fake).item() == pytest.approx(1.0)
    g_expected = (softplus(torch.tensor(0.0)) + softplus(torch.tensor(2.0))).item() / 2
    assert generator_loss("nonsaturating", fake).item() == pytest.approx(g_expected)
    with pytest.raises(ValueError):
        generator_loss("wasserstein", fake)


def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    weight = torch.tensor([1.0, -2.0, 3.0])
    x = torch.randn(4, 3, requires_grad=True)
    assert r1_penalty(x @ weight, x).item() == pytest.approx(14.0)


@pytest.mark.parametrize("upsample", ["nearest", "transpose"])
def test_generator_upsampling_choices(upsample):
    gen = build_generator(GeneratorConfig(width=4, latent_dim=8, upsample=upsample, coord_layers="all"))
    assert gen(torch.randn(2, 8)).shape == (2, 1, 64, 64)
    kinds = {type(m).__name__ for m in gen.modules()}
    assert ("Upsample" in kinds) == (upsample == "nearest")
    with pytest.raises(ValueError, match="upsample"):
        build_generator(GeneratorConfig(upsample="bilinear"))


def test_negative_output_bias_starts_from_a_black_background():
    torch.manual_seed(0)
    gen = build_generator(GeneratorConfig(width=4, latent_dim=8, output_bias=-3.0)).eval()
    assert (gen(torch.randn(16, 8)) < 0).float().mean() > 0.99


def test_stage_widths_double_as_maps_halve_and_are_capped():
    from gen.layers import stage_widths

    assert stage_widths(64, 8, 512) == [8, 16, 32, 64]  # at 32, 16, 8 and 4 px
    assert stage_widths(128, 8, 32) == [8, 16, 32, 32, 32]
    assert stage_widths(32, 4, 512) == [4, 8, 16]
    with pytest.raises(ValueError, match="resolution must be one of"):
        stage_widths(48, 8, 512)
    dcgan = build_generator(GeneratorConfig(width=4))
    assert dcgan.project[0].out_features == 32 * 16  # the coarsest stage is the widest


TILED_VARIANTS = {"authors'": {}, "radial": {"radial": True},
                  "two layers": {"objects": 2, "radial": True, "channels": 3, "output_bias": 0.0}}


@pytest.mark.parametrize("variant", TILED_VARIANTS.values(), ids=TILED_VARIANTS.keys())
def test_tiled_generator_renders_its_image_and_between_pixel_centres(variant):
    torch.manual_seed(0)
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=3, width=4, **variant)
    gen = build_generator(config)
    z = torch.randn(2, 3)
    with torch.no_grad():
        image = gen(z)
        assert torch.equal(gen.render(z).permute(0, 3, 1, 2), image)
        per_sample = gen.render(z, gen.coords.expand(2, -1, -1, -1))
        assert torch.allclose(per_sample.permute(0, 3, 1, 2), image, atol=1e-6)
        every_other = gen.render(z, gen.coords[::2, ::2])  # the convention: (row, column) at pixel centres
        assert torch.allclose(every_other, image.permute(0, 2, 3, 1)[:, ::2, ::2], atol=1e-6)
        halfway = (gen.coords[:-1] + gen.coords[1:]) / 2  # between two pixel rows
        assert gen.render(z, halfway).shape == (2, 31, 32, config.channels)


@pytest.mark.parametrize("variant", TILED_VARIANTS.values(), ids=TILED_VARIANTS.keys())
def test_tiled_generator_shift_moves_the_image_against_it(variant):
    """A shift of whole pixels moves the drawing by as many pixels the other way; half a
    pixel draws it between pixel centres."""
    torch.manual_seed(0)  # a width-4 stack that draws something: not every unit dead
    gen = build_generator(GeneratorConfig(arch="tiled", resolution=32, latent_dim=3, width=4, **variant))
    z = torch.randn(2, 3)
    with torch.no_grad():
        image = gen(z)
        assert torch.allclose(gen(z, torch.zeros(2, 2)), image, atol=1e-6)
        right = gen(z, torch.tensor([[0.0, 1.0], [0.0, 2.0]]))
        assert torch.allclose(right[0, :, :, :-1], image[0, :, :, 1:], atol=1e-5)
        assert torch.allclose(right[1, :, :, :-2], image[1, :, :, 2:], atol=1e-5)
        down = gen(z, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
        assert torch.allclose(down[:, :, :-1], image[:, :, 1:], atol=1e-5)
        halfway = (gen.coords[:-1, :-1] + gen.coords[1:, 1:]) / 2
        between = gen(z, torch.full((2, 2), 0.5)).permute(0, 2, 3, 1)[:, :-1, :-1]
        assert torch.allclose(between, gen.render(z, halfway), atol=1e-5)
        assert not torch.allclose(between, image.permute(0, 2, 3, 1)[:, :-1, :-1], atol=1e-3)


def _fixed_centres(gen: torch.nn.Module, centres: torch.Tensor) -> None:
    """Make the radial G place its layers' centres at `centres` (K x 2, in [-1, 1]) for any z."""
    gen.centre_in.weight.zero_()
    gen.centre_in.bias.copy_(torch.atanh(centres.flatten()))


def test_a_radial_layer_is_drawn_about_its_centre():
    """Moving the centre z gives a layer moves its drawing by as much: the layer is drawn in
    coordinates relative to the centre, the distance from it included."""
    torch.manual_seed(0)
    gen = build_generator(GeneratorConfig(arch="tiled", resolution=32, latent_dim=3, width=4, radial=True))
    z = torch.randn(2, 3)
    pixel = 2 / 31
    with torch.no_grad():
        _fixed_centres(gen, torch.tensor([[0.0, 0.0]]))
        image = gen(z)
        _fixed_centres(gen, torch.tensor([[2 * pixel, -pixel]]))  # two rows down, one column left
        moved = gen(z)
    assert torch.allclose(moved[:, :, 2:, :-1], image[:, :, :-2, 1:], atol=1e-5)
    assert not torch.allclose(moved, image, atol=1e-3)


def test_snapped_centres_sit_on_pixel_centres_and_pass_the_gradient_straight_through():
    """With snap_centres every centre is the nearest pixel centre of the unsnapped one, and
    the centre head still learns: its gradient is that of the unsnapped centre."""
    torch.manual_seed(0)
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=4, width=4, channels=3, objects=2,
                             radial=True, snap_centres=True)
    gen = build_generator(config)
    nn.init.normal_(gen.centre_in.weight, std=0.5)
    mapped = gen.mapping(torch.randn(6, 4))
    snapped = gen.centres(mapped)
    free = build_generator(replace(config, snap_centres=False))
    free.load_state_dict(gen.state_dict())
    unsnapped = free.centres(mapped)
    pixels = (snapped + 1) * 31 / 2
    assert torch.allclose(pixels, pixels.round(), atol=1e-4)
    assert (pixels - (unsnapped + 1) * 31 / 2).abs().max() <= 0.5 + 1e-4
    assert not torch.allclose(snapped, unsnapped)
    weights = torch.randn_like(snapped)
    grad, = torch.autograd.grad((snapped * weights).sum(), gen.centre_in.weight)
    free_grad, = torch.autograd.grad((unsnapped * weights).sum(), free.centre_in.weight)
    assert torch.allclose(grad, free_grad)
    with torch.no_grad():  # and the layers are drawn about the snapped centres
        _fixed_centres(gen, torch.tensor([[0.3, -0.4]] * 2) * (2 / 31))
        _fixed_centres(free, gen.centres(mapped)[0])
        z = torch.randn(3, 4)
        assert torch.allclose(gen(z), free(z), atol=1e-5)
    with pytest.raises(ValueError, match="snapping centres needs radial layers"):
        GeneratorConfig(arch="tiled", snap_centres=True)
    with pytest.raises(ValueError, match="jittered fakes are off the pixel grid"):
        GeneratorConfig(arch="tiled", radial=True, snap_centres=True, subpixel_jitter=0.5)


@pytest.mark.parametrize("box", [False, True])
def test_without_offset_coordinates_a_radial_layer_is_symmetric_about_its_centre(box):
    """A layer drawn from its distance to the centre alone (Euclidean or L4) is the same under
    every flip and transpose about that centre; with the offsets too it is not."""
    torch.manual_seed(0)
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=3, width=4, radial=True,
                             kind_coins=box, offset_coords=False)
    gen = build_generator(config)
    with_offsets = build_generator(replace(config, offset_coords=True))
    z = torch.randn(4, 3)
    z[:, -1] = 1.0 if box else -1.0
    images = []
    with torch.no_grad():
        for model in (gen, with_offsets):
            _fixed_centres(model, torch.zeros(1, 2))  # between the middle four pixels
            images.append(model(z))
    symmetric, skewed = images
    assert gen.coords_in is None
    for flip in (lambda x: x.flip(-1), lambda x: x.flip(-2), lambda x: x.transpose(-1, -2)):
        assert torch.allclose(flip(symmetric), symmetric, atol=1e-5)
        assert not torch.allclose(flip(skewed), skewed, atol=1e-3)
    with pytest.raises(ValueError, match="they need radial layers"):
        GeneratorConfig(arch="tiled", offset_coords=False)


def test_chained_centres_follow_their_own_slice_of_z_and_the_centres_before_them():
    """Layer k's centre is a function of z's k-th slice and the earlier centres only: the
    later slice and the kind coins move no earlier centre; it starts where the shared head's does."""
    torch.manual_seed(0)
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=9, width=4, channels=3, objects=2,
                             radial=True, kind_coins=True, chained_centres=True)
    gen = build_generator(config)
    shared = build_generator(replace(config, chained_centres=False))
    z = torch.randn(5, 9)
    assert gen.centre_slice == 3 and gen.centre_in is None
    assert torch.allclose(gen.centres(None, z), shared.centres(shared.mapping(z)))
    with torch.no_grad():
        for head in gen.centre_heads:
            nn.init.normal_(head[-1].weight, std=0.5)
        centres = gen.centres(None, z)
        later = z.clone()
        later[:, 3:] = torch.randn(5, 6)  # blue's slice, the unused entry and both coins
        moved = gen.centres(None, later)
        assert torch.equal(moved[:, 0], centres[:, 0]) and not torch.allclose(moved[:, 1], centres[:, 1])
        earlier = z.clone()
        earlier[:, :3] = torch.randn(5, 3)
        assert not torch.allclose(gen.centres(None, earlier), centres)
    gen(z).sum().backward()
    assert all(head[0].weight.grad.abs().sum() > 0 for head in gen.centre_heads)
    with pytest.raises(ValueError, match="chained centres are drawn from z"):
        gen.centres(gen.mapping(z))
    with pytest.raises(ValueError, match="chained centres need several radial layers"):
        GeneratorConfig(arch="tiled", objects=2, chained_centres=True)
    with pytest.raises(ValueError, match="chained centres need a latent entry per object layer"):
        GeneratorConfig(arch="tiled", objects=2, radial=True, kind_coins=True, latent_dim=3,
                        chained_centres=True)


def test_without_latent_masks_a_layer_is_drawn_from_its_kind_and_centre_alone_after_the_warm_up():
    """After the warm-up two z of the same kinds at the same centres draw the same masks
    (colours aside), and the other kind another; at its start the masks are those a G with
    latent masks draws, from z."""
    torch.manual_seed(0)
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=4, width=4, channels=3, objects=2,
                             radial=True, kind_coins=True, latent_masks=False)
    gen = build_generator(config)
    latent = build_generator(replace(config, latent_masks=True))
    shared = {key: value for key, value in gen.state_dict().items() if not key.startswith("mask_")}
    latent.load_state_dict(shared)
    z = torch.randn(3, 4)
    z[:, -2:] = torch.tensor([1.0, -1.0])  # first layer a box, second a disc, in every sample

    def masks(model: torch.nn.Module, kinds: torch.Tensor) -> torch.Tensor:
        firsts = model.first_layers(model.mapping(z), kinds=kinds)
        return torch.stack([model.layers(first) for first in firsts])

    with torch.no_grad():
        for model in (gen, latent):
            _fixed_centres(model, torch.tensor([[0.3, -0.2], [-0.4, 0.5]]))
        gen.mask_offsets.normal_()
        kinds = gen.kinds(z)
        gen.warm_up(0)
        latent.warm_up(0)
        assert gen.mask_blend == 0 and torch.allclose(masks(gen, kinds), masks(latent, kinds))
        gen.warm_up(config.kind_warmup)
        latent.warm_up(config.kind_warmup)
        same, varied = masks(gen, kinds), masks(latent, kinds)
        other = masks(gen, ~kinds)
    assert torch.allclose(same[:, 1:], same[:, :1].expand_as(same[:, 1:]), atol=1e-6)
    assert not torch.allclose(varied[:, 1:], varied[:, :1].expand_as(varied[:, 1:]), atol=1e-3)
    assert not torch.allclose(other, same, atol=1e-3)
    gen(z).sum().backward()
    assert gen.mask_offsets.grad.abs().sum() > 0 and gen.latent_in.weight.grad.abs().sum() == 0
    with pytest.raises(ValueError, match="masks independent of z need radial layers"):
        GeneratorConfig(arch="tiled", latent_masks=False)


def test_a_colour_coin_moves_the_layers_colours_one_layer_on_where_it_is_heads():
    """Heads, the G draws what one whose colour head is rolled one layer on draws; tails, what
    one without the coin draws; the coin is the latent entry before the kind coins."""
    torch.manual_seed(0)
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=6, width=4, channels=3, objects=2,
                             radial=True, kind_coins=True, colour_coin=True)
    gen = build_generator(config)
    plain = build_generator(replace(config, colour_coin=False))
    plain.load_state_dict(gen.state_dict())
    rolled = build_generator(replace(config, colour_coin=False))
    rolled.load_state_dict(gen.state_dict())
    with torch.no_grad():
        for tensor in (rolled.colour_in.weight, rolled.colour_in.bias):
            tensor.copy_(tensor.view(2, 3, -1).roll(1, 0).view_as(tensor))
        z = torch.randn(8, 6)
        z[:4, 3], z[4:, 3] = 1.0, -1.0
        images = gen(z)
        assert gen.colour_turns(z).tolist() == [True] * 4 + [False] * 4
        assert torch.allclose(images[:4], rolled(z)[:4], atol=1e-6)
        assert torch.allclose(images[4:], plain(z)[4:], atol=1e-6)
        assert not torch.allclose(images[:4], plain(z)[:4], atol=1e-3)
    assert build_generator(replace(config, colour_coin=False)).colour_turns(z) is None
    with pytest.raises(ValueError, match="a colour coin rotates the colours of several object layers"):
        GeneratorConfig(arch="tiled", colour_coin=True)
    with pytest.raises(ValueError, match="a colour coin needs a latent entry of its own"):
        replace(config, latent_dim=2)


def test_a_centre_spread_starts_the_centres_spread_over_z_about_their_zero_start():
    """With a spread the centres' pre-tanh coordinates vary over normal z by that many pixels
    about where the zero start puts every z; without one every z starts at one centre per layer."""
    config = GeneratorConfig(arch="tiled", latent_dim=8, width=4, channels=3, objects=2, radial=True,
                             kind_coins=True, centre_spread=6.0)
    torch.manual_seed(0)
    gen = build_generator(config)
    torch.manual_seed(0)
    still = build_generator(replace(config, centre_spread=0.0))
    z = torch.randn(20_000, 8)
    with torch.no_grad():
        pre = gen.centre_in(gen.mapping(z)) / gen.pixel
        start = torch.atanh(still.centres(still.mapping(z))).flatten(1) / gen.pixel
    assert torch.allclose(start.std(0), torch.zeros(4), atol=1e-4)
    assert torch.allclose(pre.std(0), torch.full((4,), 6.0), rtol=0.05)
    assert torch.allclose(pre.mean(0), start[0], atol=0.3)
    with pytest.raises(ValueError, match="centre spread must be at least 0 pixels"):
        replace(config, centre_spread=-1.0)
    with pytest.raises(ValueError, match="a centre spread needs radial layers"):
        GeneratorConfig(arch="tiled", centre_spread=4.0)
    with pytest.raises(ValueError, match="chained centres have a head per layer"):
        replace(config, chained_centres=True)


def test_box_distance_starts_at_zero_and_is_the_l_infinity_distance_from_the_centre():
    """Its weights start at 0, so the G draws what it would without it; the feature itself is
    max(|row - centre row|, |column - centre column|): squares about the centre."""
    torch.manual_seed(0)
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=3, width=4, radial=True,
                             box_distance=True)
    gen = build_generator(config)
    plain = build_generator(replace(config, box_distance=False))
    plain.load_state_dict({k: v for k, v in gen.state_dict().items() if not k.startswith("box_in")})
    z = torch.randn(2, 3)
    pixel = 2 / 31
    with torch.no_grad():
        assert torch.equal(gen(z), plain(z))
        for layer in (gen.latent_in, gen.coords_in, gen.radius_in):
            layer.weight.zero_()
        gen.latent_in.bias.zero_()
        gen.box_in.weight.fill_(1.0)
        _fixed_centres(gen, torch.tensor([[3 * pixel, -5 * pixel]]))
        (first,) = gen.first_layers(gen.mapping(z))
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    box = torch.maximum((rows - 18.5).abs(), (cols - 10.5).abs()) * pixel  # centre at row 18.5, column 10.5
    assert torch.allclose(first[0, :, :, 0], config.first_gain * box, atol=1e-5)
    with pytest.raises(ValueError, match="box distance needs radial layers"):
        GeneratorConfig(arch="tiled", box_distance=True)


def test_colours_from_the_data_start_each_layer_in_its_colour_held_off_the_sigmoids_ends():
    config = GeneratorConfig(arch="tiled", channels=3, objects=2, radial=True, latent_dim=8, width=2,
                             colour_start="data", start_colours=((1, 0, 0), (0.5, 0.3, 0.9)))
    gen = build_generator(config)
    start = torch.sigmoid(gen.colour_in.bias).view(2, 3)
    assert torch.allclose(start, torch.tensor([[0.8, 0.2, 0.2], [0.5, 0.3, 0.8]]))
    assert config.start_colours == ((1.0, 0.0, 0.0), (0.5, 0.3, 0.9))
    with pytest.raises(ValueError, match="need 2 start colours of 3 channels"):
        build_generator(replace(config, start_colours=()))
    with pytest.raises(ValueError, match="need 2 start colours of 3 channels"):
        build_generator(replace(config, start_colours=((1, 0), (0, 1))))


@pytest.mark.parametrize("fields, message", [
    ({"colour_start": "data"}, "colours from the data need several object layers"),
    ({"objects": 2, "start_colours": ((1, 0, 0), (0, 0, 1))}, "they need colour_start 'data'"),
    ({"objects": 2, "colour_start": "data", "start_colours": ((1, 0, 0),)}, "1 start colours for 2 object"),
    ({"objects": 2, "colour_start": "data", "start_colours": ((1, 0, 0), (0, 0, 2))}, "must be in .0, 1."),
    ({"objects": 2, "colour_start": "sampled"}, "unknown colour start 'sampled'"),
])
def test_start_colour_settings_that_cannot_hold_are_input_errors(fields, message):
    with pytest.raises(InputError, match=message):
        GeneratorConfig(arch="tiled", **fields)


def test_kind_coins_pick_each_layers_distance_by_the_sign_of_a_latent_entry():
    """A layer whose coin (z's entry for it, from the end) is positive measures L4 distance
    from its centre, a negative one Euclidean: a threshold draws a box or a disc.
    Over the warm-up a box layer's distance turns from the one to the other."""
    torch.manual_seed(0)
    config = GeneratorConfig(arch="tiled", resolution=32, latent_dim=4, width=4, channels=3, objects=2,
                             radial=True, kind_coins=True)
    gen = build_generator(config)
    z = torch.randn(2, 4)
    z[:, 2:] = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert torch.equal(gen.kinds(z), torch.tensor([[True, False], [False, True]]))
    pixel = 2 / 31
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    rows, cols = (rows - 18.5) * pixel, (cols - 10.5) * pixel  # centre at row 18.5, column 10.5
    box = (rows**4 + cols**4 + gen.softening**2) ** 0.25
    disc = (rows.square() + cols.square() + gen.softening).sqrt()
    with torch.no_grad():
        for layer in (gen.latent_in, gen.coords_in):
            layer.weight.zero_()
        gen.latent_in.bias.zero_()
        gen.radius_in.weight.fill_(1.0)
        _fixed_centres(gen, torch.tensor([[3 * pixel, -5 * pixel]] * 2))
        assert gen.kind_blend == 1  # a G built to sample draws boxes
        for step, blend in [(250, 0.25), (config.kind_warmup, 1.0), (5 * config.kind_warmup, 1.0)]:
            gen.warm_up(step)
            firsts = gen.first_layers(gen.mapping(z), kinds=gen.kinds(z))
            boxes = disc.lerp(box, blend)
            for sample, layer, distance in [(0, 0, boxes), (0, 1, disc), (1, 0, disc), (1, 1, boxes)]:
                assert torch.allclose(firsts[layer][sample, :, :, 0], config.first_gain * distance, atol=1e-5)
    offset = torch.stack([rows, cols], -1)[None]
    assert torch.allclose(gen.coin_box_distance(offset)[0, :, :, 0], box)
    first_coins = build_generator(replace(config, coin_box="linf"))  # the checkpoints of 2026-12-01
    linf = torch.maximum(rows.abs(), cols.abs())
    assert torch.equal(first_coins.coin_box_distance(offset)[0, :, :, 0], linf)
    assert build_generator(replace(config, kind_coins=False)).kinds(z) is None
    with pytest.raises(ValueError, match="kind coins need radial layers"):
        GeneratorConfig(arch="tiled", kind_coins=True)
    with pytest.raises(ValueError, match="a latent entry per object layer"):
        GeneratorConfig(arch="tiled", latent_dim=1, objects=2, radial=True, kind_coins=True)
    with pytest.raises(ValueError, match="two ways to draw boxes"):
        GeneratorConfig(arch="tiled", radial=True, kind_coins=True, box_distance=True)
    with pytest.raises(ValueError, match="unknown kind-coin box distance"):
        GeneratorConfig(arch="tiled", radial=True, kind_coins=True, coin_box="l2")
    with pytest.raises(ValueError, match="kind warm-up must be at least 0"):
        GeneratorConfig(arch="tiled", radial=True, kind_coins=True, kind_warmup=-1)


def test_kind_coin_layers_start_apart_and_inside_the_canvas():
    """Two layers started at one centre, or in one colour, blend into one object of a mixed
    colour; they start as far apart as the data's objects may be close, away from the
    edges, and each in a colour of its own."""
    torch.manual_seed(0)
    for objects in (1, 2):
        gen = build_generator(GeneratorConfig(arch="tiled", channels=3, objects=objects, radial=True,
                                              kind_coins=True))
        with torch.no_grad():
            centres = torch.tanh(gen.centre_in(gen.mapping(torch.randn(5, 64)))).view(5, objects, 2)
        assert torch.equal(centres, centres[:1].expand_as(centres))  # the same for every z at the start
        pixels = centres[0] * 31.5
        assert pixels.abs().max() <= 16
        gaps = torch.pdist(pixels)
        assert (gaps >= 20).all() and (objects > 1 or pixels.abs().max() == 0)
        if objects > 1:
            colours = gen.colour_in.bias.view(objects, 3)
            assert not torch.allclose(colours[0], colours[1], atol=0.1)


def test_one_threshold_of_the_kind_coin_distances_draws_both_kinds_at_the_datas_sizes():
    """At sub-pixel centres a disc is the data's circle for thresholds 4.6-4.75 px, an
    L-infinity box the data's square only at exactly 4.5 px, an L4 box for 4.55-4.75 px: so
    with the L4 box one threshold suits both kinds, as the coins share one radius unit."""
    centres = torch.rand(400, 2, generator=torch.Generator().manual_seed(0)) * 30 + 17
    pixels = torch.arange(64.0)
    dx = pixels.view(1, 1, -1) - centres[:, 0, None, None]
    dy = pixels.view(1, -1, 1) - centres[:, 1, None, None]

    def right(distance: torch.Tensor, threshold: float, kind: str) -> float:
        objects = decode((distance < threshold).float() * 2 - 1, (-1, 1))
        good = size_ok(objects) & (objects.kind == KINDS.index(kind))
        return (np.bincount(objects.image[good], minlength=len(centres)) == 1).mean()

    disc, quartic = (dx.square() + dy.square()).sqrt(), (dx**4 + dy**4) ** 0.25
    box = torch.maximum(dx.abs(), dy.abs())
    for threshold in (4.62, 4.68, 4.74):
        assert right(disc, threshold, "circle") == 1 and right(quartic, threshold, "square") >= 0.99
        assert right(box, threshold, "square") < 0.7


def test_the_gan_task_warms_up_kind_coins_and_masks_with_its_steps():
    """The shapes preset's kind and mask blends follow the step, in the EMA G and a resumed task."""
    config = gan_preset(coordconv=True, data="shapes", generator={"width": 2}).model
    config = config.with_start_colours(((1, 0, 0), (0, 0, 1)))
    task = GANTask(config.for_data(3, 64), torch.device("cpu"))
    real = torch.rand(4, 3, 64, 64) * 2 - 1
    warmup = config.generator.kind_warmup
    for step, blend in [(warmup // 4, 0.25), (warmup, 1.0)]:
        task.train_step(real, step)
        resumed = GANTask(config.for_data(3, 64), torch.device("cpu"))
        resumed.load_state_dict(task.state_dict())
        for name in ("kind_blend", "mask_blend"):
            assert getattr(task.generator, name) == blend
            assert getattr(task.generator_ema, name) == blend  # sampling draws what training drew
            assert getattr(resumed.generator, name) == blend and getattr(resumed.generator_ema, name) == blend


def test_layers_are_screen_blended_onto_black_each_in_its_colour():
    gen = build_generator(GeneratorConfig(arch="tiled", resolution=32, latent_dim=3, width=2, channels=3,
                                          objects=2, radial=True))
    z = torch.randn(4, 3)
    with torch.no_grad():
        gen.colour_in.weight.zero_()
        gen.colour_in.bias.copy_(torch.tensor([30.0, -30, -30, -30, -30, 30]))  # layer 0 red, layer 1 blue
        gen.layers[-2].weight.zero_()
        gen.layers[-2].bias.fill_(-30.0)  # every mask off: black
        assert torch.allclose(gen(z), torch.full((4, 3, 32, 32), -1.0))
        gen.layers[-2].bias.fill_(30.0)  # every mask on everywhere: red + blue
        assert torch.allclose(gen(z), torch.tensor([1.0, -1, 1]).view(1, 3, 1, 1).expand(4, 3, 32, 32))
        gen.colour_in.bias.copy_(torch.tensor([30.0, -30, -30, 30, -30, -30]))  # both red: no brighter
        assert torch.allclose(gen(z), torch.tensor([1.0, -1, -1]).view(1, 3, 1, 1).expand(4, 3, 32, 32))


def test_layered_and_radial_generators_are_tiled_settings():
    shapes = gan_preset(coordconv=True, data="shapes").model.generator
    assert shapes.objects == 2 and shapes.radial and shapes.arch == "tiled"
    assert gan_preset(coordconv=True, data="squares") == gan_preset(coordconv=True)
    assert gan_preset(data="shapes") == GAN_PRESETS["dcgan"]  # no shapes preset of its own
    assert preset_name("tiled", "shapes") == "tiled-shapes" and preset_name("tiled", "lsun") == "tiled"
    assert preset_label("tiled-shapes") == "tiled G on shapes" and preset_label("dcgan") == "dcgan G"
    for fields in ({"objects": 2}, {"radial": True}):
        with pytest.raises(ValueError, match="need the tiled G"):
            GeneratorConfig(arch="dcgan", **fields)
    with pytest.raises(ValueError, match="objects must be at least 1"):
        GeneratorConfig(arch="tiled", objects=0)


def test_subpixel_jitter_is_a_tiled_generator_setting_of_at_least_zero():
    assert GAN_PRESETS["tiled"].model.generator.subpixel_jitter > 0
    assert GAN_PRESETS["dcgan"].model.generator.subpixel_jitter == 0
    with pytest.raises(ValueError, match="needs the tiled G"):
        GeneratorConfig(arch="dcgan", subpixel_jitter=0.5)
    with pytest.raises(ValueError, match="at least 0 pixels"):
        GeneratorConfig(arch="tiled", subpixel_jitter=-0.1)
