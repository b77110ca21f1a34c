"""Model families and the architecture description they are built from.

An `Architecture` names a family (a class with `generator(arch)` and `discriminator(arch)` builders, chosen in gin by
reference: `architecture.family = @SNDCGAN`) and the numbers that fix the shapes of every weight. It is written to a
model_dir's `run.json`, so that a run of another architecture is refused before anything is overwritten.

Generators map z [B, z_dim] (and labels [B] int, when num_classes > 0) to images [B, R, R, C] in [-1, 1].
Discriminators map images (and labels) to logits [B].
"""

import dataclasses

import gin

from icr_tf.errors import ConfigError
from icr_tf.models.common import call_model  # noqa: F401  (re-exported)
from icr_tf.models.resnet import ResNet
from icr_tf.models.sndcgan import SNDCGAN

FAMILIES = (SNDCGAN, ResNet)


@dataclasses.dataclass(frozen=True)
class Architecture:
  family: type
  resolution: int
  channels: int
  z_dim: int
  num_classes: int
  g_width: int
  d_width: int

  @property
  def conditional(self) -> bool:
    return self.num_classes > 0

  def to_dict(self) -> dict:
    d = dataclasses.asdict(self)
    d["family"] = self.family.name
    return d

  def describe(self) -> str:
    return ", ".join(f"{k}={v}" for k, v in self.to_dict().items())


@gin.configurable
def architecture(family=gin.REQUIRED, resolution=32, channels=3, z_dim=128, num_classes=0, g_width=None,
                 d_width=None) -> Architecture:
  """The architecture of a run. g_width / d_width default to the family's paper widths."""
  if getattr(family, "name", None) not in {f.name for f in FAMILIES}:
    raise ConfigError(f"unknown model family {family!r}; accepted: {', '.join('@' + f.__name__ for f in FAMILIES)}")
  for name, value in (("channels", channels), ("z_dim", z_dim)):
    if not isinstance(value, int) or value < 1:
      raise ConfigError(f"architecture.{name} must be a positive integer; got {value!r}")
  if not isinstance(num_classes, int) or num_classes < 0:
    raise ConfigError(f"architecture.num_classes must be 0 (unconditional) or a positive integer; got {num_classes!r}")
  family.check_resolution(resolution)
  return Architecture(family=family, resolution=resolution, channels=channels, z_dim=z_dim, num_classes=num_classes,
                      g_width=family.default_g_width if g_width is None else g_width,
                      d_width=family.default_d_width if d_width is None else d_width)


def architecture_from_dict(d: dict) -> Architecture:
  """The inverse of Architecture.to_dict (as written to run.json)."""
  by_name = {f.name: f for f in FAMILIES}
  if d.get("family") not in by_name:
    raise ConfigError(f"unknown model family {d.get('family')!r} in run.json; accepted: {', '.join(by_name)}")
  return Architecture(**{**d, "family": by_name[d["family"]]})


def build_generator(arch: Architecture, name="generator"):
  return arch.family.generator(arch, name=name)


def build_discriminator(arch: Architecture, name="discriminator"):
  return arch.family.discriminator(arch, name=name)
