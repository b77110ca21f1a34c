"""Adversarial losses, per example, from TF-GAN's plain loss functions.

Each loss has `d_loss(real_logits, fake_logits) -> [B]` and `g_loss(fake_logits) -> [B]`, and calling it returns both.
Logits are D's outputs [B]. Per-example values let the train step average over the global batch under tf.distribute.
With r = D(x), f = D(G(z)) and softplus(t) = log(1 + e^t):

  NonSaturating (Goodfellow et al. 2014, 'modified'): L_D = softplus(-r) + softplus(f),  L_G = softplus(-f)
  Minimax (saturating):                              L_D = softplus(-r) + softplus(f),  L_G = -softplus(f)
  Hinge (Lim & Ye 2017; Miyato et al. 2018):          L_D = relu(1 - r) + relu(1 + f),   L_G = -f
  Wasserstein (Arjovsky et al. 2017):                 L_D = f - r,                       L_G = -f
  LeastSquares (Mao et al. 2017, a=0, b=c=1):         L_D = (r - 1)^2 / 2 + f^2 / 2,     L_G = (f - 1)^2 / 2

TF-GAN's minimax and modified D losses default to label smoothing of 0.25 (the real target becomes 1 - s/2); here
the default is 0 (the paper's setting), bindable as `NonSaturating.label_smoothing`.
"""

import gin
import tensorflow as tf

from icr_tf.compat import tfgan

_NONE = tf.compat.v1.losses.Reduction.NONE
_wargs = tfgan.losses.wargs


def _per_example(values):
  return tf.reshape(values, [-1])


class AdversarialLoss:
  """(real_logits [B], fake_logits [B]) -> (d_loss [B], g_loss [B])."""

  name = "adversarial"

  def d_loss(self, real_logits, fake_logits):
    raise NotImplementedError

  def g_loss(self, fake_logits):
    raise NotImplementedError

  def __call__(self, real_logits, fake_logits):
    return self.d_loss(real_logits, fake_logits), self.g_loss(fake_logits)


@gin.configurable
class NonSaturating(AdversarialLoss):
  name = "non_saturating"

  def __init__(self, label_smoothing=0.0):
    self.label_smoothing = label_smoothing

  def d_loss(self, real_logits, fake_logits):
    return _per_example(_wargs.modified_discriminator_loss(
        real_logits, fake_logits, label_smoothing=self.label_smoothing, reduction=_NONE))

  def g_loss(self, fake_logits):
    return _per_example(_wargs.modified_generator_loss(fake_logits, reduction=_NONE))


@gin.configurable
class Minimax(NonSaturating):
  name = "minimax"

  def d_loss(self, real_logits, fake_logits):
    return _per_example(_wargs.minimax_discriminator_loss(
        real_logits, fake_logits, label_smoothing=self.label_smoothing, reduction=_NONE))

  def g_loss(self, fake_logits):
    # TF-GAN's minimax_generator_loss adds the constant D loss on a logit of 1; the formula without it:
    return -tf.nn.softplus(_per_example(fake_logits))


@gin.configurable
class Hinge(AdversarialLoss):
  name = "hinge"

  def d_loss(self, real_logits, fake_logits):
    return _per_example(_wargs.wasserstein_hinge_discriminator_loss(real_logits, fake_logits, reduction=_NONE))

  def g_loss(self, fake_logits):
    return _per_example(_wargs.wasserstein_generator_loss(fake_logits, reduction=_NONE))


@gin.configurable
class Wasserstein(AdversarialLoss):
  name = "wasserstein"

  def d_loss(self, real_logits, fake_logits):
    return _per_example(_wargs.wasserstein_discriminator_loss(real_logits, fake_logits, reduction=_NONE))

  def g_loss(self, fake_logits):
    return _per_example(_wargs.wasserstein_generator_loss(fake_logits, reduction=_NONE))


@gin.configurable
class LeastSquares(AdversarialLoss):
  name = "least_squares"

  def d_loss(self, real_logits, fake_logits):
    return _per_example(_wargs.least_squares_discriminator_loss(real_logits, fake_logits, reduction=_NONE))

  def g_loss(self, fake_logits):
    return _per_example(_wargs.least_squares_generator_loss(fake_logits, reduction=_NONE))


ALL = (NonSaturating, Minimax, Hinge, Wasserstein, LeastSquares)
