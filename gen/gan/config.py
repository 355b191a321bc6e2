"""GAN configs and the per-generator presets, with their real defaults.

`GANConfig()` is what `gen train gan` trains (the DCGAN); `GAN_PRESETS["tiled"]` is what
`gen train gan --coordconv` trains (the authors' tiled CoordConv generator). A preset holds
hyperparameters only, the same on every data set; each was tuned on squares on 2 CPU cores.
No torch here: the command line reads the presets for its help text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gen.configs import COORD_PLACEMENTS, Preset, Schedule, check_choice, given, setting
from gen.errors import InputError

ARCHS = ("dcgan", "tiled")
LOSSES = ("nonsaturating", "hinge")
LATENT_DISTRIBUTIONS = ("normal", "uniform")


@dataclass
class GeneratorConfig:
    arch: str = setting("dcgan", "Generator: DCGAN, or the authors' tiled-latent CoordConv generator; each "
                        "has its own preset.", group="generator", choices=ARCHS,
                        default_help="tiled when --coordconv puts CoordConv in G, else dcgan")
    resolution: int = 64
    channels: int = 1
    latent_dim: int = setting(64, "Size of z.", group="generator", minimum=1)
    width: int = setting(8, "Generator base width.", group="generator", flag="g-width", minimum=1)
    max_width: int = 512
    coord_layers: str = "none"
    upsample: str = setting("transpose", "DCGAN G upsampling: 4x4 stride-2 transposed conv, or nearest x2 + "
                            "3x3 conv.", group="generator", choices=("transpose", "nearest"),
                            applies=("dcgan",))
    output_bias: float = setting(-3.0, "Initial bias of G's last layer: negative starts from a black "
                                 "background.", group="generator")
    mapping_layers: int = 2  # tiled: MLP layers on z before it is tiled
    first_gain: float = 2.0  # tiled: gain on the first per-pixel layer
    mapping_tanh: bool = True  # tiled: the mapping's last activation is tanh, not ReLU
    subpixel_jitter: float = setting(0.0, "Tiled G: training draws each fake up to this many pixels off the "
                                     "pixel grid on each axis, so D judges sizes at every sub-pixel position "
                                     "(0: off).", group="generator", minimum=0, applies=("tiled",))

    def __post_init__(self) -> None:
        check_choice("generator arch", self.arch, ARCHS)
        check_choice("coord_layers", self.coord_layers, COORD_PLACEMENTS)
        check_choice("upsample", self.upsample, ("transpose", "nearest"))
        if self.mapping_tanh and self.mapping_layers < 1:
            raise InputError("mapping_tanh needs mapping_layers >= 1")
        if self.subpixel_jitter < 0:
            raise InputError(f"subpixel jitter must be at least 0 pixels, got {self.subpixel_jitter}")
        if self.subpixel_jitter > 0 and self.arch != "tiled":
            raise InputError("subpixel jitter needs the tiled G (it draws every pixel as f(z, i, j)), "
                             f"not the {self.arch} G")



@dataclass
class DiscriminatorConfig:
    resolution: int = 64
    channels: int = 1
    width: int = setting(8, "Discriminator base width.", group="discriminator", flag="d-width", minimum=1)
    max_width: int = 512
    coord_layers: str = "none"
    minibatch_std: bool = setting(True, "Minibatch standard-deviation feature in D.", group="discriminator")
    kernel_size: int = setting(4, "Discriminator conv kernel size (of every stride-2 conv).",
                               group="discriminator", flag="d-kernel", minimum=2)

    def __post_init__(self) -> None:
        check_choice("coord_layers", self.coord_layers, COORD_PLACEMENTS)
        if self.kernel_size < 2:
            raise InputError(f"discriminator kernel_size must be at least 2, got {self.kernel_size}")


@dataclass
class GANConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: str = setting("nonsaturating", "GAN loss.", group="loss", choices=LOSSES)
    latent: str = setting("normal", "Latent distribution.", group="loss", choices=LATENT_DISTRIBUTIONS)
    g_lr: float = setting(5e-4, "Generator learning rate.", group="loss", minimum=0)
    d_lr: float = setting(5e-4, "Discriminator learning rate.", group="loss", minimum=0)
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = setting(1.0, "R1 penalty weight (0: off).", group="loss", flag="r1", minimum=0)
    r1_every: int = 4
    g_steps: int = setting(1, "G steps per D step.", group="loss", minimum=1)
    ema_beta: float = setting(0.999, "EMA decay of G's weights (0: off; below 1).", group="loss", flag="ema",
                              minimum=0)
    ema_rampup: float = setting(1 / 9, "EMA horizon in steps: this times (step + 10), until --ema caps it.",
                                group="loss")

    def __post_init__(self) -> None:
        check_choice("GAN loss", self.loss, LOSSES)
        check_choice("latent distribution", self.latent, LATENT_DISTRIBUTIONS)
        if not 0 <= self.ema_beta < 1:
            raise InputError(f"ema_beta must be in [0, 1), got {self.ema_beta}")
        if self.ema_rampup <= 0:
            raise InputError(f"ema_rampup must be positive, got {self.ema_rampup}")

    def for_data(self, channels: int, resolution: int) -> GANConfig:
        """The same GAN sized for images of this channel count and resolution."""
        shape = {"channels": channels, "resolution": resolution}
        return replace(self, generator=replace(self.generator, **shape),
                       discriminator=replace(self.discriminator, **shape))


# The tiled G trains only against the authors' slower D (lr 1e-4, two G steps per D step),
# a wider D and a ramp-down; its last layer starts at 0 (its He-initialised stack needs no
# dark start). A smoother D (R1 10) snaps its squares to the pixel grid in fewer steps, and
# a faster G (lr 1e-3) gets there sooner on every seed tried, its noise averaged out by the EMA.
# Its training fakes are drawn up to half a pixel off the grid, so D judges their sizes at
# every sub-pixel position, not only where G snaps them: results spread less over seeds.
_TILED = GANConfig(generator=GeneratorConfig(arch="tiled", output_bias=0.0, subpixel_jitter=0.5),
                   discriminator=DiscriminatorConfig(width=16), g_lr=1e-3, d_lr=1e-4, g_steps=2,
                   r1_gamma=10.0)
GAN_PRESETS: dict[str, Preset[GANConfig]] = {
    "dcgan": Preset(GANConfig(), Schedule(steps=20_000)),
    "tiled": Preset(_TILED, Schedule(steps=4_000, lr_rampdown=0.3)),
}


def preset_label(name: str) -> str:
    """How help text names a preset: 'tiled preset'."""
    return f"{name} preset"


def resolve_placement(coordconv: bool, coord_in: str = "both", coord_layers: str = "all",
                      arch: str | None = None) -> tuple[str, str, str]:
    """(arch, G coord_layers, D coord_layers) for the CoordConv switches: with CoordConv in G
    the default G is the tiled one, which sees coordinates at every pixel, so `first`
    placement in G needs the DCGAN G."""
    g_coords = coord_layers if coordconv and coord_in in ("both", "g") else "none"
    d_coords = coord_layers if coordconv and coord_in in ("both", "d") else "none"
    arch = arch or ("tiled" if g_coords != "none" else "dcgan")
    if arch == "tiled" and g_coords == "first":
        raise InputError("--coord-layers first needs a DCGAN G (--arch dcgan) or --coord-in d: the tiled G "
                         "sees coordinates at every pixel")
    return arch, g_coords, d_coords


def gan_preset(coordconv: bool = False, coord_in: str = "both", coord_layers: str = "all",
               arch: str | None = None, generator: dict | None = None,
               discriminator: dict | None = None, **settings) -> Preset[GANConfig]:
    """The preset for the CoordConv switches and generator architecture, with
    CoordConv placed and any other field replaced: `generator` and `discriminator` replace
    fields of those configs, `settings` fields of GANConfig. None values are left at the preset's."""
    arch, g_coords, d_coords = resolve_placement(coordconv, coord_in, coord_layers, arch)
    check_choice("generator arch", arch, ARCHS)
    preset = GAN_PRESETS[arch]
    base = preset.model
    model = replace(
        base,
        generator=replace(base.generator, coord_layers=g_coords, **given(generator or {})),
        discriminator=replace(base.discriminator, coord_layers=d_coords, **given(discriminator or {})),
        **given(settings))
    return Preset(model, preset.schedule)
