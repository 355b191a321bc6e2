from dataclasses import asdict, replace

import pytest
import torch
from torch import nn

from gen.checkpoint import Checkpoint
from gen.coordconv import AddCoords, coordinate_grid
from gen.gan.config import (
    GAN_PRESETS,
    DiscriminatorConfig,
    GeneratorConfig,
    gan_preset,
    preset_label,
)
from gen.gan.losses import discriminator_loss, generator_loss, r1_penalty
from gen.gan.models import Discriminator, MinibatchStd, build_generator


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
    first = gen.first_layer(z)
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


TILED_VARIANTS = {"grey": {}, "rgb": {"channels": 3, "output_bias": 0.0}}


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


def test_the_tiled_preset_sized_for_shapes_is_the_generic_tiled_g_at_three_channels():
    """Presets hold hyperparameters only: on shapes the tiled G is the squares one, RGB."""
    preset = gan_preset(coordconv=True).model
    shapes = preset.for_data(channels=3, resolution=64)
    assert shapes.generator == replace(preset.generator, channels=3)
    z = torch.randn(2, shapes.generator.latent_dim)
    assert build_generator(shapes.generator)(z).shape == (2, 3, 64, 64)
    assert preset_label("tiled") == "tiled preset"


def test_subpixel_jitter_is_a_tiled_generator_setting_of_at_least_zero():
    assert GAN_PRESETS["tiled"].model.generator.subpixel_jitter > 0
    assert GAN_PRESETS["dcgan"].model.generator.subpixel_jitter == 0
    with pytest.raises(ValueError, match="needs the tiled G"):
        GeneratorConfig(arch="dcgan", subpixel_jitter=0.5)
    with pytest.raises(ValueError, match="at least 0 pixels"):
        GeneratorConfig(arch="tiled", subpixel_jitter=-0.1)
