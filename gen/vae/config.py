"""VAE configs and the preset, with their real defaults: `VAEConfig()` is what
`gen train vae` trains on squares and shapes; with CoordConv in the decoder the decoder is
the spatial broadcast one. No torch here (the command line reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from gen.configs import COORD_PLACEMENTS, GENERATED_SOURCES, Preset, Schedule, check_choice, given, setting

DECODERS = ("dcgan", "broadcast")
LIKELIHOODS = ("bernoulli", "gaussian", "discretized")


@dataclass
class VAEModelConfig:
    resolution: int = 64
    channels: int = 1
    latent_dim: int = setting(8, "Size of the latent code.", group="model", minimum=1)
    width: int = setting(16, "Encoder/decoder base width.", group="model", minimum=1)
    max_width: int = 256
    encoder_coords: str = "none"
    decoder_coords: str = "none"
    decoder: str = setting("dcgan", "Transposed-conv decoder, or the spatial broadcast (tiled latent + "
                           "coords) one.", group="model", choices=DECODERS,
                           default_help="broadcast with CoordConv in the decoder, else dcgan")
    broadcast_width: int = 32
    broadcast_resolution: int = 16

    def __post_init__(self) -> None:
        check_choice("decoder", self.decoder, DECODERS)
        check_choice("encoder_coords", self.encoder_coords, COORD_PLACEMENTS)
        check_choice("decoder_coords", self.decoder_coords, COORD_PLACEMENTS)


@dataclass
class VAEConfig:
    model: VAEModelConfig = field(default_factory=VAEModelConfig)
    likelihood: str = setting("bernoulli", "Pixel likelihood.", group="loss", choices=LIKELIHOODS,
                              default_help="bernoulli for squares and shapes, discretized for natural images")
    beta: float = setting(4.0, "KL weight (beta-VAE); above 1 a smoother latent, whose prior samples land "
                          "on objects.", group="loss", minimum=0)
    kl_warmup: int = setting(1000, "Steps of linear KL warm-up from 0 to beta.", group="loss", minimum=0)
    lr: float = setting(1e-3, "Adam learning rate.", group="loss", minimum=0)

    def __post_init__(self) -> None:
        check_choice("likelihood", self.likelihood, LIKELIHOODS)

    def for_data(self, channels: int, resolution: int) -> VAEConfig:
        """The same VAE sized for images of this channel count and resolution."""
        return replace(self, model=replace(self.model, channels=channels, resolution=resolution))


VAE_PRESET: Preset[VAEConfig] = Preset(VAEConfig(), Schedule(steps=6_000))


def default_likelihood(data: str) -> str:
    """Bernoulli for the binary Not-so-Clevr sets, discretised Gaussian for natural images."""
    return "bernoulli" if data in GENERATED_SOURCES else "discretized"


def default_decoder(decoder_coords: bool) -> str:
    """The spatial broadcast decoder when the decoder gets CoordConv (as the GAN's tiled
    generator, it draws every position from the latent and that position's coordinates),
    else the transposed-conv one."""
    return "broadcast" if decoder_coords else "dcgan"


def vae_preset(coordconv: bool = False, coord_in: str = "both", coord_layers: str = "all",
               data: str = "squares", likelihood: str | None = None, model: dict | None = None,
               **settings) -> Preset[VAEConfig]:
    """The VAE preset for the CoordConv switches (`coord_in`: both, encoder or decoder) and
    the data, with any field replaced: `model` replaces VAEModelConfig fields, `settings`
    VAEConfig fields. None values are left at the preset's."""
    check_choice("coord_in", coord_in, ("both", "encoder", "decoder"))
    config = VAE_PRESET.model
    placement = {half + "_coords": coord_layers if coordconv and coord_in in ("both", half) else "none"
                 for half in ("encoder", "decoder")}
    model = {"decoder": default_decoder(placement["decoder_coords"] != "none"), **given(model or {})}
    config = replace(config, model=replace(config.model, **placement, **model),
                     likelihood=likelihood or default_likelihood(data), **given(settings))
    return Preset(config, VAE_PRESET.schedule)
