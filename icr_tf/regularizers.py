"""Consistency regularization: CR, bCR, zCR and ICR (Zhao et al., "Improved Consistency Regularization for GANs").

Each term is a pure function of D's logits (or G's images) returning per-example values [B]; the train step averages
them over the global batch and weights them. With T an image augmentation and T(z) = z + dz, dz ~ N(0, sigma_noise^2 I):

  L_real = || D(x) - D(T(x)) ||^2                 CR (Zhang et al. 2020) and bCR's real term, weight lambda_real
  L_fake = || D(G(z)) - D(T(G(z))) ||^2           bCR's fake term (Alg. 1 of the paper), weight lambda_fake
  L_dis  = || D(G(z)) - D(G(T(z))) ||^2           zCR, added to D's loss, weight lambda_dis
  L_gen  = -|| G(z) - G(T(z)) ||^2                zCR, added to G's loss, weight lambda_gen (Alg. 2): G is pushed to be
                                                  sensitive to dz, so L_gen <= 0
  L_D = L_adv_D + lambda_real L_real + lambda_fake L_fake + lambda_dis L_dis
  L_G = L_adv_G + lambda_gen L_gen

|| a - b ||^2 is the squared difference averaged over each example's elements (for D's single logit, (a - b)^2; for
images, the mean over H x W x C), and then over the batch: the mean squared error of public reference implementations,
which keeps lambda_gen = 0.5 on the scale of the adversarial loss whatever the resolution.

CR is bCR with lambda_fake = 0 (lambda_cr = lambda_real); ICR is bCR + zCR. The paper's defaults:
lambda_real = lambda_fake = 10, sigma_noise = 0.03, lambda_gen = 0.5, lambda_dis = 5.
"""

import dataclasses
from typing import Sequence

import gin
import tensorflow as tf

from icr_tf import augment as augment_lib
from icr_tf.errors import ConfigError


def squared_distance(a, b):
  """Per-example mean squared difference: [B, ...] x [B, ...] -> [B]."""
  diff = tf.reshape(tf.square(a - b), [tf.shape(a)[0], -1])
  return tf.reduce_mean(diff, axis=1)


def real_consistency(real_logits, real_aug_logits):
  """CR / bCR real term: (D(x) - D(T(x)))^2 per example."""
  return squared_distance(real_logits, real_aug_logits)


def fake_consistency(fake_logits, fake_aug_logits):
  """bCR fake term: (D(G(z)) - D(T(G(z))))^2 per example."""
  return squared_distance(fake_logits, fake_aug_logits)


def zcr_discriminator(fake_logits, fake_zaug_logits):
  """zCR D term: (D(G(z)) - D(G(T(z))))^2 per example."""
  return squared_distance(fake_logits, fake_zaug_logits)


def zcr_generator(fake_images, fake_zaug_images):
  """zCR G term: -||G(z) - G(T(z))||^2 per example (mean over pixels). Always <= 0."""
  return -squared_distance(fake_images, fake_zaug_images)


def perturb_latents(z, rng: augment_lib.BatchRandom, sigma_noise):
  """T(z) = z + dz, dz ~ N(0, sigma_noise^2 I)."""
  return z + rng.normal([z.shape[-1]], stddev=sigma_noise)


@dataclasses.dataclass(frozen=True)
class Consistency:
  """The weights of the consistency terms, sigma_noise and the augmentation ops T."""
  lambda_real: float = 0.0
  lambda_fake: float = 0.0
  lambda_dis: float = 0.0
  lambda_gen: float = 0.0
  sigma_noise: float = 0.03
  augment_ops: Sequence = (augment_lib.flip, augment_lib.translate)

  @property
  def uses_zaug(self) -> bool:
    return self.lambda_dis > 0 or self.lambda_gen > 0

  @property
  def name(self) -> str:
    b = self.lambda_real > 0 and self.lambda_fake > 0
    z = self.lambda_dis > 0 or self.lambda_gen > 0
    if b and z:
      return "icr"
    if b:
      return "bcr"
    if z:
      return "zcr" if self.lambda_real == 0 and self.lambda_fake == 0 else "custom"
    if self.lambda_real > 0:
      return "cr"
    return "none" if self.lambda_fake == 0 else "custom"

  def augment(self, images, rng):
    return augment_lib.augment(images, rng, ops=self.augment_ops)


@gin.configurable
def consistency(lambda_real=0.0, lambda_fake=0.0, lambda_dis=0.0, lambda_gen=0.0, sigma_noise=0.03,
                augment_ops=(augment_lib.flip, augment_lib.translate)) -> Consistency:
  """The consistency terms of a run; all weights 0 (no regularization) unless bound, e.g. in gin/regularizers/."""
  for name, value in (("lambda_real", lambda_real), ("lambda_fake", lambda_fake), ("lambda_dis", lambda_dis),
                      ("lambda_gen", lambda_gen), ("sigma_noise", sigma_noise)):
    if not isinstance(value, (int, float)) or value < 0:
      raise ConfigError(f"consistency.{name} must be a number >= 0; got {value!r}")
  if (lambda_dis > 0 or lambda_gen > 0) and sigma_noise <= 0:
    raise ConfigError(f"zCR needs consistency.sigma_noise > 0; got {sigma_noise!r}")
  return Consistency(float(lambda_real), float(lambda_fake), float(lambda_dis), float(lambda_gen),
                     float(sigma_noise), tuple(augment_ops))
