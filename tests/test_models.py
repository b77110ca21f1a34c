"""Model families: shapes at several resolutions and channel counts, conditional variants, bad resolutions."""

import gin
import numpy as np
import pytest
import tensorflow as tf

from icr_tf import models
from icr_tf.errors import ConfigError
from icr_tf.models import layers

CASES = [
    (models.SNDCGAN, 32, 3, 0),
    (models.SNDCGAN, 48, 1, 0),
    (models.SNDCGAN, 16, 1, 10),
    (models.ResNet, 32, 3, 0),
    (models.ResNet, 16, 1, 10),
    (models.ResNet, 64, 3, 0),
]


@pytest.mark.parametrize("family,resolution,channels,num_classes", CASES,
                         ids=[f"{c[0].name}-{c[1]}-{c[2]}ch-{c[3]}cls" for c in CASES])
def test_shapes(family, resolution, channels, num_classes):
  arch = models.architecture(family=family, resolution=resolution, channels=channels, z_dim=16,
                             num_classes=num_classes, g_width=4, d_width=4)
  g, d = models.build_generator(arch), models.build_discriminator(arch)
  z = tf.random.normal([3, 16])
  labels = tf.constant([0, 1, 2]) if num_classes else None
  images = models.call_model(g, arch, z, labels, training=True)
  assert images.shape == (3, resolution, resolution, channels)
  assert float(tf.reduce_max(tf.abs(images))) <= 1.0
  logits = models.call_model(d, arch, images, labels, training=True)
  assert logits.shape == (3,)
  sn_layers = [layer for layer in d._flatten_layers() if isinstance(layer, layers._SpectralNorm)]  # pylint: disable=protected-access
  assert sn_layers and all(not v.trainable for layer in sn_layers for v in [layer.u])


def test_paper_widths_are_the_defaults():
  sndcgan = models.architecture(family=models.SNDCGAN)
  resnet = models.architecture(family=models.ResNet)
  assert (sndcgan.g_width, sndcgan.d_width) == (64, 64)
  assert (resnet.g_width, resnet.d_width) == (256, 128)
  d = models.build_discriminator(sndcgan)
  kernels = [v.shape[-1] for v in d.trainable_variables if v.path.endswith("kernel")]
  assert kernels == [64, 64, 128, 128, 256, 256, 512, 1]  # Miyato et al. 2018, Table 3


def test_projection_discriminator_depends_on_the_label():
  arch = models.architecture(family=models.SNDCGAN, resolution=16, channels=1, z_dim=8, num_classes=4, g_width=2,
                             d_width=2)
  d = models.build_discriminator(arch)
  images = tf.random.normal([2, 16, 16, 1])
  a = models.call_model(d, arch, images, tf.constant([0, 0]), training=False)
  b = models.call_model(d, arch, images, tf.constant([3, 3]), training=False)
  assert not np.allclose(a.numpy(), b.numpy())


@pytest.mark.parametrize("family,resolution", [(models.SNDCGAN, 28), (models.SNDCGAN, 4), (models.ResNet, 48),
                                               (models.ResNet, 8)])
def test_bad_resolution_is_one_clear_error(family, resolution):
  with pytest.raises(ConfigError, match=f"got {resolution}"):
    models.architecture(family=family, resolution=resolution)


def test_family_by_gin_reference():
  gin.parse_config("architecture.family = @ResNet")
  assert models.architecture().family.name == "resnet"
