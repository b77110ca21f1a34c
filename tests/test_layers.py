"""Spectral normalization (Miyato et al. 2018) is a reparametrization W / sigma(W), not a projection."""

import numpy as np
import pytest
import tensorflow as tf

from icr_tf.models import layers


def _sn_dense(fan_in=6, units=4, seed=0):
  layer = layers.SNDense(units, kernel_initializer=tf.keras.initializers.RandomNormal(stddev=1.0, seed=seed))
  layer.build((None, fan_in))
  return layer


def _sn_conv(seed=0):
  layer = layers.SNConv2D(5, 3, kernel_initializer=tf.keras.initializers.RandomNormal(stddev=1.0, seed=seed))
  layer.build((None, 8, 8, 2))
  return layer


@pytest.mark.parametrize("make", [_sn_dense, _sn_conv], ids=["dense", "conv"])
def test_effective_weight_has_unit_spectral_norm(make):
  layer = make()
  matrix = layer.kernel.numpy().reshape(-1, layer.kernel.shape[-1])
  top = np.linalg.svd(matrix, compute_uv=False)[0]
  assert top > 2.0  # far from 1 before normalization
  for _ in range(30):  # the power iteration converges over training calls
    effective, sigma = layer.normalized_kernel(training=True)
  assert float(sigma) == pytest.approx(top, rel=1e-3)
  effective_top = np.linalg.svd(effective.numpy().reshape(matrix.shape), compute_uv=False)[0]
  assert effective_top == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("make", [_sn_dense, _sn_conv], ids=["dense", "conv"])
def test_forward_pass_leaves_the_kernel_alone_and_moves_u_only_in_training(make):
  layer = make()
  x = tf.random.normal([2, 6]) if isinstance(layer, layers.SNDense) else tf.random.normal([2, 8, 8, 2])
  kernel, u = layer.kernel.numpy().copy(), layer.u.numpy().copy()
  layer(x, training=False)
  np.testing.assert_array_equal(layer.u.numpy(), u)
  layer(x, training=True)
  np.testing.assert_array_equal(layer.kernel.numpy(), kernel)
  assert not np.allclose(layer.u.numpy(), u)


def test_gradient_flows_through_sigma():
  layer = _sn_dense()
  x = tf.random.stateless_normal([3, 6], [1, 2])
  w0 = layer.kernel.numpy().astype(np.float64)
  v = layer.u.numpy().astype(np.float64) @ w0.T  # one power iteration from the stored u, as the layer does
  v /= np.linalg.norm(v)
  u_new = v @ w0
  u_new /= np.linalg.norm(u_new)

  def loss_np(w):  # sigma(W) = v^T W u with the power-iteration vectors held constant (Miyato et al., Eq. 12)
    sigma = (v @ w @ u_new.T).item()
    return float(np.sum(np.square(x.numpy().astype(np.float64) @ (w / sigma))))

  with tf.GradientTape() as tape:
    kernel, _ = layer.normalized_kernel(training=False)
    loss = tf.reduce_sum(tf.square(x @ kernel))
  grad = tape.gradient(loss, layer.kernel).numpy()

  w = layer.kernel.numpy().astype(np.float64)
  numeric = np.zeros_like(w)
  eps = 1e-6
  for i in range(w.shape[0]):
    for j in range(w.shape[1]):
      plus, minus = w.copy(), w.copy()
      plus[i, j] += eps
      minus[i, j] -= eps
      numeric[i, j] = (loss_np(plus) - loss_np(minus)) / (2 * eps)
  np.testing.assert_allclose(grad, numeric, rtol=2e-3, atol=2e-4)

  # With sigma treated as a constant the gradient would differ: the term through sigma is really there.
  sigma = float(layer.normalized_kernel(training=False)[1])
  constant_sigma = 2 * x.numpy().T @ (x.numpy() @ (w / sigma)) / sigma
  assert not np.allclose(grad, constant_sigma, rtol=1e-2)


def test_conditional_batch_norm_picks_scale_and_offset_by_class():
  layer = layers.ConditionalBatchNorm(num_classes=3, synchronized=False)
  x = tf.random.stateless_normal([4, 2, 2, 5], [0, 3])
  labels = tf.constant([0, 1, 2, 1])
  layer([x, labels], training=True)
  layer.gamma.assign(tf.constant([[0.0] * 5, [1.0] * 5, [0.0] * 5]))
  layer.beta.assign(tf.constant([[0.0] * 5, [0.0] * 5, [3.0] * 5]))
  out = layer([x, labels], training=False).numpy()
  plain = layer.bn(x, training=False).numpy()
  np.testing.assert_allclose(out[0], plain[0], rtol=1e-6)
  np.testing.assert_allclose(out[1], 2 * plain[1], rtol=1e-6)
  np.testing.assert_allclose(out[2], plain[2] + 3, rtol=1e-6)
