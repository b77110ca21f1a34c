"""ResNet SNGAN for 32x32 (Miyato et al. 2018, Table 4; the paper's CIFAR-10 'ResNet').

Generator (g_width w = 256): z -> dense to 4x4xw -> k up-blocks of w channels (k = log2(R / 4); 3 at 32x32)
  -> BN, ReLU, conv3x3 to C channels, tanh. Up-block: BN, ReLU, upsample x2, conv3x3, BN, ReLU, conv3x3;
  shortcut: upsample x2, conv1x1.
Discriminator (d_width w = 128): optimized down-block (conv3x3, ReLU, conv3x3, avg-pool; shortcut avg-pool, conv1x1),
  k - 2 down-blocks, 2 plain blocks (ReLU, conv3x3, ReLU, conv3x3, identity shortcut), ReLU, global sum pooling,
  dense to one logit; all spectrally normalized. Conditional: conditional BN in G, projection in D.
Resolutions 4 * 2^k with k >= 2 (16, 32, 64, ...); any channel count.
"""

import gin
import keras

from icr_tf.errors import ConfigError
from icr_tf.models import layers
from icr_tf.models.common import bn, generator_output, image_inputs, make_model, model_inputs, projection_logits


def _up_block(arch, x, labels, filters, name):
  shortcut = keras.layers.UpSampling2D(2)(x)
  shortcut = keras.layers.Conv2D(filters, 1, name=f"{name}_sc")(shortcut)
  h = keras.layers.ReLU()(bn(arch, x, labels, f"{name}_bn1"))
  h = keras.layers.UpSampling2D(2)(h)
  h = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(h)
  h = keras.layers.ReLU()(bn(arch, h, labels, f"{name}_bn2"))
  h = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(h)
  return keras.layers.Add()([h, shortcut])


def _down_block(x, filters, name, optimized=False, downsample=True):
  h = x if optimized else keras.layers.ReLU()(x)
  h = layers.SNConv2D(filters, 3, name=f"{name}_conv1")(h)
  h = keras.layers.ReLU()(h)
  h = layers.SNConv2D(filters, 3, name=f"{name}_conv2")(h)
  if downsample:
    h = keras.layers.AveragePooling2D(2)(h)
  shortcut = x
  if optimized:
    shortcut = layers.SNConv2D(filters, 1, name=f"{name}_sc")(keras.layers.AveragePooling2D(2)(x))
  elif downsample or x.shape[-1] != filters:
    shortcut = layers.SNConv2D(filters, 1, name=f"{name}_sc")(x)
    if downsample:
      shortcut = keras.layers.AveragePooling2D(2)(shortcut)
  return keras.layers.Add()([h, shortcut])


@gin.register
class ResNet:
  name = "resnet"
  default_g_width = 256
  default_d_width = 128

  @staticmethod
  def check_resolution(resolution):
    if not isinstance(resolution, int) or resolution < 16 or resolution & (resolution - 1):
      raise ConfigError(f"the ResNet family takes a power-of-two resolution >= 16 (16, 32, 64, ...); got {resolution!r}")

  @staticmethod
  def _num_up(arch):
    return arch.resolution.bit_length() - 3  # log2(R / 4)

  @staticmethod
  def generator(arch, name="generator"):
    w = arch.g_width
    z, labels = model_inputs(arch, (arch.z_dim,), "z")
    x = keras.layers.Dense(4 * 4 * w, name="dense")(z)
    x = keras.layers.Reshape((4, 4, w))(x)
    for i in range(ResNet._num_up(arch)):
      x = _up_block(arch, x, labels, w, f"block{i}")
    x = keras.layers.ReLU()(bn(arch, x, labels, "bn_out"))
    return generator_output(arch, x, z, labels, name)

  @staticmethod
  def discriminator(arch, name="discriminator"):
    w = arch.d_width
    images, labels = image_inputs(arch)
    x = _down_block(images, w, "block0", optimized=True)
    for i in range(1, ResNet._num_up(arch) - 1):
      x = _down_block(x, w, f"block{i}")
    for i in range(ResNet._num_up(arch) - 1, ResNet._num_up(arch) + 1):
      x = _down_block(x, w, f"block{i}", downsample=False)
    x = keras.layers.ReLU()(x)
    x = keras.ops.sum(x, axis=(1, 2))
    return make_model(arch, images, labels, projection_logits(arch, x, labels, "out"), name)
