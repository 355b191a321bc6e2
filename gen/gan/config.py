"""GAN configs and the per-generator presets, with their real defaults.

`GANConfig()` is what `gen train gan` trains (the DCGAN); `GAN_PRESETS["tiled"]` is what
`gen train gan --coordconv` trains (the authors' tiled CoordConv generator). Each preset's
settings are the best measured on squares on 2 CPU cores, with the steps that fit the
15-minute budget there (README: the measurements and ablations behind each value).
No torch here: the command line reads the presets for its help text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gen.configs import COORD_PLACEMENTS, Preset, Schedule, check_choice, given
from gen.errors import InputError

ARCHS = ("dcgan", "tiled")
LOSSES = ("nonsaturating", "hinge")
LATENT_DISTRIBUTIONS = ("normal", "uniform")
COIN_BOXES = ("l4", "linf")
COLOUR_STARTS = ("drawn", "data")


@dataclass
class GeneratorConfig:
    arch: str = "dcgan"  # "dcgan" or "tiled" (the authors' CoordConv generator)
    resolution: int = 64
    channels: int = 1
    latent_dim: int = 64
    width: int = 8
    max_width: int = 512
    coord_layers: str = "none"
    upsample: str = "transpose"  # dcgan: "transpose" (4x4, stride 2) or "nearest" (x2 + 3x3 conv)
    output_bias: float = -3.0  # last layer's initial bias; -3 starts the DCGAN from a black background
    mapping_layers: int = 2  # tiled: MLP layers on z before it is tiled
    first_gain: float = 2.0  # tiled: gain on the first per-pixel layer
    mapping_tanh: bool = True  # tiled: the mapping's last activation is tanh, not ReLU
    subpixel_jitter: float = 0.0  # tiled: training draws each sample up to this many pixels off the grid
    objects: int = 1  # tiled: layers drawn by the per-pixel stack, each a mask in a colour from z
    radial: bool = False  # tiled: each layer drawn about a centre from z, with its distance as a coordinate
    box_distance: bool = False  # tiled radial: the L-infinity distance from the centre too
    kind_coins: bool = False  # tiled radial: a coin from z per layer picks Euclidean or L4 distance
    kind_warmup: int = 1000  # steps in which boxes turn from Euclidean (and masks leave z if not latent)
    coin_box: str = "l4"  # kind coins: the box layers' distance, "l4" or "linf" (the first coins')
    snap_centres: bool = False  # tiled radial: centres rounded to the pixel grid (straight-through)
    offset_coords: bool = True  # tiled radial: layers see the offset from their centre, not only the distance
    chained_centres: bool = False  # tiled radial: a centre from its own slice of z and the centres before it
    latent_masks: bool = True  # tiled radial: z shapes each layer's mask, not only its centre, kind, colour
    centre_spread: float = 0.0  # tiled radial: centres' spread over z at the start, pixels (0: one per layer)
    colour_coin: bool = False  # several layers: a coin from z moves the colours a layer on (two: swaps them)
    colour_start: str = "drawn"  # several layers: colours "drawn" (random with coins, else grey) or "data"
    start_colours: tuple[tuple[float, ...], ...] = ()  # colour_start "data": one per layer, measured

    def __post_init__(self) -> None:
        check_choice("generator arch", self.arch, ARCHS)
        check_choice("coord_layers", self.coord_layers, COORD_PLACEMENTS)
        check_choice("upsample", self.upsample, ("transpose", "nearest"))
        check_choice("kind-coin box distance", self.coin_box, COIN_BOXES)
        check_choice("colour start", self.colour_start, COLOUR_STARTS)
        self.start_colours = tuple(tuple(float(value) for value in colour) for colour in self.start_colours)
        if self.mapping_tanh and self.mapping_layers < 1:
            raise InputError("mapping_tanh needs mapping_layers >= 1")
        if self.subpixel_jitter < 0:
            raise InputError(f"subpixel jitter must be at least 0 pixels, got {self.subpixel_jitter}")
        if self.objects < 1:
            raise InputError(f"objects must be at least 1, got {self.objects}")
        if (self.objects > 1 or self.radial) and self.arch != "tiled":
            raise InputError(f"objects and radial need the tiled G, not the {self.arch} G")
        if self.box_distance and not self.radial:
            raise InputError("box distance needs radial layers (--radial): it is measured from their centres")
        if self.kind_coins and not self.radial:
            raise InputError("kind coins need radial layers (--radial; or --no-kind-coins): they pick how a "
                             "layer measures the distance from its centre")
        if self.kind_coins and self.box_distance:
            raise InputError("kind coins and the box distance are two ways to draw boxes: choose one")
        if self.kind_coins and self.objects > self.latent_dim:
            raise InputError(f"kind coins need a latent entry per object layer: {self.objects} layers, "
                             f"latent_dim {self.latent_dim}")
        if self.snap_centres and not self.radial:
            raise InputError("snapping centres needs radial layers (--radial; or --no-snap-centres): they "
                             "are what has centres")
        if not self.offset_coords and not self.radial:
            raise InputError("layers without offset coordinates draw from their distance to a centre alone: "
                             "they need radial layers (--radial; or --offset-coords)")
        if self.chained_centres and not (self.radial and self.objects > 1):
            raise InputError("chained centres need several radial layers (--objects 2 --radial; or "
                             "--no-chained-centres): each layer's centre follows the ones before it")
        coins = self.coin_entries
        if self.chained_centres and self.latent_dim - self.objects - coins < 0:
            raise InputError(f"chained centres need a latent entry per object layer beside the {coins} coin "
                             f"entries: {self.objects} layers, latent_dim {self.latent_dim}")
        if not self.latent_masks and not self.radial:
            raise InputError("masks independent of z need radial layers (--radial; or --latent-masks): "
                             "without a centre from z every sample would be the same image")
        if not self.centre_spread >= 0:
            raise InputError(f"centre spread must be at least 0 pixels, got {self.centre_spread}")
        if self.centre_spread > 0 and not self.radial:
            raise InputError("a centre spread needs radial layers (--radial; or --centre-spread 0): they "
                             "are what has centres")
        if self.centre_spread > 0 and self.chained_centres:
            raise InputError("a centre spread starts the shared centre head; chained centres have a head per "
                             "layer: add --centre-spread 0 or --no-chained-centres")
        if self.colour_coin and self.objects < 2:
            raise InputError("a colour coin rotates the colours of several object layers (--objects 2 or "
                             "more; or --no-colour-coin)")
        if self.colour_coin and coins > self.latent_dim:
            raise InputError(f"a colour coin needs a latent entry of its own: {coins} coin entries, "
                             f"latent_dim {self.latent_dim}")
        if self.snap_centres and self.subpixel_jitter > 0:
            raise InputError("snapped centres and sub-pixel jitter: jittered fakes are off the pixel grid "
                             "again; add --subpixel-jitter 0 or --no-snap-centres")
        if self.colour_start == "data" and self.objects < 2:
            raise InputError("colours from the data need several object layers (--objects 2 or more; or "
                             "--colour-start drawn): one layer's colour is the stack's output")
        if self.start_colours and self.colour_start != "data":
            raise InputError("start colours are measured from the data: they need colour_start 'data'")
        if self.start_colours and len(self.start_colours) != self.objects:
            raise InputError(f"{len(self.start_colours)} start colours for {self.objects} object layers")
        if any(not 0 <= value <= 1 for colour in self.start_colours for value in colour):
            raise InputError(f"start colours must be in [0, 1], got {self.start_colours}")
        if self.kind_warmup < 0:
            raise InputError(f"kind warm-up must be at least 0 steps, got {self.kind_warmup}")
        if self.subpixel_jitter > 0 and self.arch != "tiled":
            raise InputError("subpixel jitter needs the tiled G (it draws every pixel as f(z, i, j)), "
                             f"not the {self.arch} G")


    @property
    def coin_entries(self) -> int:
        """How many of z's last entries are read as coins: a kind per layer, then the colour coin
        before them."""
        return self.objects * self.kind_coins + self.colour_coin


@dataclass
class DiscriminatorConfig:
    resolution: int = 64
    channels: int = 1
    width: int = 8
    max_width: int = 512
    coord_layers: str = "none"
    minibatch_std: bool = True
    kernel_size: int = 4  # of every stride-2 conv; 5 lets the second layer see both edges of a square

    def __post_init__(self) -> None:
        check_choice("coord_layers", self.coord_layers, COORD_PLACEMENTS)
        if self.kernel_size < 2:
            raise InputError(f"discriminator kernel_size must be at least 2, got {self.kernel_size}")


@dataclass
class GANConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: str = "nonsaturating"
    latent: str = "normal"
    g_lr: float = 5e-4
    d_lr: float = 5e-4
    betas: tuple[float, float] = (0.0, 0.99)
    r1_gamma: float = 1.0
    r1_every: int = 4
    g_steps: int = 1
    ema_beta: float = 0.999
    ema_rampup: float = 1 / 9  # EMA horizon: ema_rampup * (step + 10) steps, up to 1 / (1 - ema_beta)

    def __post_init__(self) -> None:
        check_choice("GAN loss", self.loss, LOSSES)
        check_choice("latent distribution", self.latent, LATENT_DISTRIBUTIONS)
        if self.generator.centre_spread > 0 and self.latent != "normal":
            raise InputError("a centre spread is measured over normal latents: add --latent normal or "
                             "--centre-spread 0")
        if self.ema_rampup <= 0:
            raise InputError(f"ema_rampup must be positive, got {self.ema_rampup}")

    def with_start_colours(self, colours: tuple[tuple[float, ...], ...]) -> GANConfig:
        """The same GAN with its G's layer colours to start from (measured from the data)."""
        return replace(self, generator=replace(self.generator, start_colours=colours))

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
# On the two-object shapes the tiled G draws each object as a layer of its own, about a centre
# from z with the distance from it as a coordinate (a circle is then one unit, not a polygon
# of half-planes): a narrower stack per layer keeps the two layers' step near the budget.
# A coin from z picks each layer's kind (a continuous G draws the mean of a square and a
# circle), its centre sits on the pixel grid as the data's do (so no jitter), and its colour
# starts at the data's (a drawn colour can merge the two layers into one object). After the
# warm-up each layer draws one mask per kind for every z, from its distance to the centre
# alone, as the data's objects of a kind are one symmetric shape: masks that z reshapes drew
# a pixel too much on some samples of every seed. Boxes are L-infinity: about a pixel centre
# every threshold from 4.47 to 5 px then draws both kinds right. A coin from z swaps the two
# layers' colours, so neither colour keeps to one side of the other, and the centres start
# spread 4 px over z. 2,000 steps fit the 15-minute budget.
_SHAPES_G = replace(_TILED.generator, objects=2, radial=True, width=6, kind_coins=True, snap_centres=True,
                    subpixel_jitter=0.0, colour_start="data", latent_masks=False, offset_coords=False,
                    coin_box="linf", colour_coin=True, centre_spread=4.0)
GAN_PRESETS: dict[str, Preset[GANConfig]] = {
    "dcgan": Preset(GANConfig(), Schedule(steps=20_000)),
    "tiled": Preset(_TILED, Schedule(steps=4_000, lr_rampdown=0.3)),
    "tiled-shapes": Preset(replace(_TILED, generator=_SHAPES_G), Schedule(steps=2_000, lr_rampdown=0.3)),
}


def preset_name(arch: str, data: str | None = None) -> str:
    """The preset of a generator for a data set: `arch-data` where one is tuned for that data,
    else the generator's own."""
    return f"{arch}-{data}" if f"{arch}-{data}" in GAN_PRESETS else arch


def preset_label(name: str) -> str:
    """How help text names a preset: 'tiled G', or 'tiled G on shapes'."""
    arch, _, data = name.partition("-")
    return f"{arch} G on {data}" if data else f"{arch} G"


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
               arch: str | None = None, data: str | None = None, generator: dict | None = None,
               discriminator: dict | None = None, **settings) -> Preset[GANConfig]:
    """The preset for the CoordConv switches, generator architecture and data set, with
    CoordConv placed and any other field replaced: `generator` and `discriminator` replace
    fields of those configs, `settings` fields of GANConfig. None values are left at the preset's."""
    arch, g_coords, d_coords = resolve_placement(coordconv, coord_in, coord_layers, arch)
    check_choice("generator arch", arch, ARCHS)
    preset = GAN_PRESETS[preset_name(arch, data)]
    base = preset.model
    model = replace(
        base,
        generator=replace(base.generator, coord_layers=g_coords, **given(generator or {})),
        discriminator=replace(base.discriminator, coord_layers=d_coords, **given(discriminator or {})),
        **given(settings))
    return Preset(model, preset.schedule)
