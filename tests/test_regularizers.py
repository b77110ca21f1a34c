"""The consistency terms against numbers worked by hand, and their properties."""

import numpy as np
import pytest
import tensorflow as tf

from icr_tf import augment, regularizers
from icr_tf.errors import ConfigError


def test_real_and_fake_consistency_by_hand():
  # (1 - 1.5)^2 = 0.25 and (2 - 0)^2 = 4 per example; the batch mean is 2.125.
  real = tf.constant([1.0, 2.0])
  aug = tf.constant([1.5, 0.0])
  np.testing.assert_allclose(regularizers.real_consistency(real, aug).numpy(), [0.25, 4.0])
  np.testing.assert_allclose(regularizers.fake_consistency(real, aug).numpy(), [0.25, 4.0])
  np.testing.assert_allclose(regularizers.zcr_discriminator(real, aug).numpy(), [0.25, 4.0])
  assert float(tf.reduce_mean(regularizers.real_consistency(real, aug))) == pytest.approx(2.125)


def test_zcr_generator_by_hand():
  # Example 0: differences (0.1, -0.3, 0, 0.2) -> mean of squares (0.01 + 0.09 + 0 + 0.04) / 4 = 0.035.
  # Example 1: identical images -> 0.
  a = tf.constant([[[[0.1], [0.0]], [[0.5], [0.2]]], [[[0.3], [0.3]], [[0.3], [0.3]]]])
  b = tf.constant([[[[0.0], [0.3]], [[0.5], [0.0]]], [[[0.3], [0.3]], [[0.3], [0.3]]]])
  np.testing.assert_allclose(regularizers.zcr_generator(a, b).numpy(), [-0.035, 0.0], atol=1e-7)


def test_zcr_generator_is_nonpositive_and_grows_with_sensitivity_to_dz():
  z = tf.random.stateless_normal([32, 8], [0, 1])
  rng = augment.BatchRandom([2, 3], 32)
  z_aug = regularizers.perturb_latents(z, rng, sigma_noise=0.03)
  weights = tf.random.stateless_normal([8, 4 * 4 * 3], [0, 2])

  def generator(latents, gain):  # a G whose sensitivity to z grows with gain
    return tf.reshape(tf.tanh(gain * latents @ weights), [-1, 4, 4, 3])

  terms = [float(tf.reduce_mean(regularizers.zcr_generator(generator(z, g), generator(z_aug, g))))
           for g in (0.1, 0.5, 2.0)]
  assert all(t <= 0.0 for t in terms)
  assert abs(terms[0]) < abs(terms[1]) < abs(terms[2])


def test_perturb_latents_has_the_asked_sigma():
  z = tf.zeros([4000, 16])
  dz = regularizers.perturb_latents(z, augment.BatchRandom([1, 1], 4000), sigma_noise=0.03).numpy()
  assert abs(dz.std() - 0.03) < 0.001 and abs(dz.mean()) < 0.001


def test_consistency_names_and_defaults():
  assert regularizers.consistency().name == "none"
  assert regularizers.consistency(lambda_real=10).name == "cr"
  assert regularizers.consistency(lambda_real=10, lambda_fake=10).name == "bcr"
  assert regularizers.consistency(lambda_dis=5, lambda_gen=0.5).name == "zcr"
  icr = regularizers.consistency(lambda_real=10, lambda_fake=10, lambda_dis=5, lambda_gen=0.5)
  assert icr.name == "icr" and icr.sigma_noise == 0.03
  assert icr.augment_ops == (augment.flip, augment.translate)


@pytest.mark.parametrize("kwargs", [{"lambda_real": -1.0}, {"lambda_gen": "a"}, {"lambda_dis": 5, "sigma_noise": 0}])
def test_consistency_rejects_bad_values(kwargs):
  with pytest.raises(ConfigError):
    regularizers.consistency(**kwargs)
