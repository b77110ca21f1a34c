"""Adversarial losses against values worked by hand, per example."""

import math

import numpy as np
import pytest
import tensorflow as tf

from icr_tf import losses

REAL = tf.constant([1.0, -2.0])
FAKE = tf.constant([0.5, 3.0])


def softplus(t):
  return math.log1p(math.exp(t))


CASES = {
    # name: (d per example, g per example), with r = (1, -2), f = (0.5, 3)
    losses.NonSaturating: ([softplus(-1) + softplus(0.5), softplus(2) + softplus(3)], [softplus(-0.5), softplus(-3)]),
    losses.Minimax: ([softplus(-1) + softplus(0.5), softplus(2) + softplus(3)], [-softplus(0.5), -softplus(3)]),
    losses.Hinge: ([0.0 + 1.5, 3.0 + 4.0], [-0.5, -3.0]),
    losses.Wasserstein: ([0.5 - 1.0, 3.0 + 2.0], [-0.5, -3.0]),
    losses.LeastSquares: ([0.0 + 0.125, 4.5 + 4.5], [0.125, 2.0]),
}


@pytest.mark.parametrize("loss_cls", list(CASES), ids=lambda c: c.name)
def test_losses_by_hand(loss_cls):
  d_expected, g_expected = CASES[loss_cls]
  d, g = loss_cls()(REAL, FAKE)
  assert d.shape == (2,) and g.shape == (2,)
  np.testing.assert_allclose(d.numpy(), d_expected, rtol=1e-5)
  np.testing.assert_allclose(g.numpy(), g_expected, rtol=1e-5)


def test_no_label_smoothing_by_default_and_bindable():
  plain = losses.NonSaturating().d_loss(REAL, FAKE)
  smoothed = losses.NonSaturating(label_smoothing=0.25).d_loss(REAL, FAKE)
  # TF-GAN smooths towards 1/2: the real target is 1 - 0.25 / 2 = 0.875, so on r = 1 the loss is
  # 0.875 softplus(-1) + 0.125 softplus(1).
  expected = 0.875 * softplus(-1) + 0.125 * softplus(1) + softplus(0.5)
  assert float(smoothed[0]) == pytest.approx(expected, rel=1e-5)
  assert float(plain[0]) != pytest.approx(float(smoothed[0]))


def test_every_loss_is_listed():
  assert set(losses.ALL) == set(CASES)
