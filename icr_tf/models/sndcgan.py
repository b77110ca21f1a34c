"""SNDCGAN: the 'standard CNN' of Miyato et al. 2018 (Table 3), the paper's CIFAR-10 SNDCGAN.

Generator (g_width w = 64 in the paper): z -> dense to (R/8)x(R/8)x8w -> BN, ReLU
  -> [deconv 4x4 stride 2, BN, ReLU] with 4w, 2w, w channels -> conv 3x3 to C channels -> tanh.
Discriminator (d_width w = 64): conv3x3 w, conv4x4/2 w, conv3x3 2w, conv4x4/2 2w, conv3x3 4w, conv4x4/2 4w,
  conv3x3 8w, each followed by LeakyReLU(0.1), then a dense layer to one logit; all spectrally normalized.
Conditional variants use class-conditional batch norm in G and a projection term <embed(y), h> in D
(Miyato & Koyama 2018). Any resolution divisible by 8 and any channel count.
"""

import gin
import keras

from icr_tf.errors import ConfigError
from icr_tf.models import layers
from icr_tf.models.common import bn, generator_output, image_inputs, make_model, model_inputs, projection_logits


@gin.register
class SNDCGAN:
  name = "sndcgan"
  default_g_width = 64
  default_d_width = 64

  @staticmethod
  def check_resolution(resolution):
    if not isinstance(resolution, int) or resolution < 8 or resolution % 8:
      raise ConfigError(f"SNDCGAN takes a resolution divisible by 8 (e.g. 32, 48, 64); got {resolution!r} "
                        "(pad 28x28 images to 32 with data_source.resize_method='pad')")

  @staticmethod
  def generator(arch, name="generator"):
    w, bottom = arch.g_width, arch.resolution // 8
    z, labels = model_inputs(arch, (arch.z_dim,), "z")
    x = keras.layers.Dense(bottom * bottom * 8 * w, name="dense")(z)
    x = keras.layers.Reshape((bottom, bottom, 8 * w))(x)
    x = keras.layers.ReLU()(bn(arch, x, labels, "bn0"))
    for i, mult in enumerate((4, 2, 1), start=1):
      x = keras.layers.Conv2DTranspose(mult * w, 4, strides=2, padding="same", name=f"deconv{i}")(x)
      x = keras.layers.ReLU()(bn(arch, x, labels, f"bn{i}"))
    return generator_output(arch, x, z, labels, name)

  @staticmethod
  def discriminator(arch, name="discriminator"):
    w = arch.d_width
    images, labels = image_inputs(arch)
    x = images
    plan = ((3, 1, w), (4, 2, w), (3, 1, 2 * w), (4, 2, 2 * w), (3, 1, 4 * w), (4, 2, 4 * w), (3, 1, 8 * w))
    for i, (kernel, stride, filters) in enumerate(plan):
      x = layers.SNConv2D(filters, kernel, strides=stride, name=f"conv{i}")(x)
      x = keras.layers.LeakyReLU(negative_slope=0.1)(x)
    x = keras.layers.Flatten()(x)
    return make_model(arch, images, labels, projection_logits(arch, x, labels, "out"), name)
