"""Sample-quality metrics from classifier activations: FID, KID, IS, precision/recall, density/coverage.

Each metric is a pure function of feature (or logit) arrays; running the classifier and sampling live elsewhere
(`features.py`, `evaluator.py`), so real-set activations are computed once and cached. TF-GAN does the math where it
has the function (FID's trace term, KID, IS); the nearest-neighbour metrics, which TF-GAN lacks, are written here in
blocks so that memory stays bounded.

Shapes: features [N, D] (real) and [M, D] (generated), logits [M, K].
"""

import math

import numpy as np
import tensorflow as tf
from tensorflow.python.util import deprecation  # pylint: disable=g-direct-tensorflow-import

from icr_tf.compat import tfgan
from icr_tf.errors import UserError


def _tensor(x, dtype=None):
  x = tf.convert_to_tensor(x)
  return x if dtype is None else tf.cast(x, dtype)


def frechet_distance(features1, features2) -> float:
  """FID of two activation sets (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
  Local Nash Equilibrium", arXiv 1706.08500):

      FID = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

  with mu, S the mean [D] and unbiased covariance [D, D] of features [N, D] and [M, D]. TF-GAN's
  `frechet_classifier_distance_from_activations`, in float64. For activations too many to hold, see
  `frechet_distance_from_moments`.
  """
  return float(tfgan.eval.frechet_classifier_distance_from_activations(_tensor(features1, tf.float64),
                                                                       _tensor(features2, tf.float64)))


def frechet_distance_from_moments(mean1, cov1, mean2, cov2) -> float:
  """The same FID from means [D] and unbiased covariances [D, D] (as `stats.Moments` streams them):

      FID = |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^(1/2))

  The trace of the square root is TF-GAN's `trace_sqrt_product` (the function its FID uses), in float64.
  """
  mean1, mean2 = _tensor(mean1, tf.float64), _tensor(mean2, tf.float64)
  cov1, cov2 = _tensor(cov1, tf.float64), _tensor(cov2, tf.float64)
  sqrt_trace = tfgan.eval.classifier_metrics.trace_sqrt_product(cov1, cov2)
  fid = tf.reduce_sum(tf.math.squared_difference(mean1, mean2)) + tf.linalg.trace(cov1 + cov2) - 2.0 * sqrt_trace
  return float(fid)


def kid_block_size(n, max_block_size=1000) -> int:
  """KID's block size: at most `max_block_size`, and small enough for at least two blocks (for the std)."""
  return max(1, min(max_block_size, math.ceil(n / 2)))


def kernel_distance(features1, features2, max_block_size=1000):
  """KID and its standard error (Binkowski et al. 2018, "Demystifying MMD GANs", arXiv 1801.01401):

      KID = MMD^2_unbiased(X, Y) with the kernel k(x, y) = (x.y / D + 1)^3

  estimated over blocks (of at most `max_block_size`, at least two blocks) by TF-GAN's
  `kernel_classifier_distance_and_std_from_activations`, in float64. Returns (mean, std) as floats. Both sets
  should be in random order (blocks are contiguous).
  """
  n = max(int(np.shape(features1)[0]), int(np.shape(features2)[0]))
  with deprecation.silence():  # TF-GAN's map_fn(back_prop=False) warns on every first call
    mean, std = tfgan.eval.kernel_classifier_distance_and_std_from_activations(
        _tensor(features1, tf.float64), _tensor(features2, tf.float64),
        max_block_size=kid_block_size(n, max_block_size))
  return float(mean), float(std)


def split_bounds(count, splits):
  """The [start, end) of each of `splits` contiguous, near-equal parts of `count` items."""
  return [(count * i // splits, count * (i + 1) // splits) for i in range(splits)]


def classifier_score(logits) -> float:
  """IS of one split (Salimans et al. 2016, "Improved Techniques for Training GANs", arXiv 1606.03498):

      IS = exp(E_x KL(p(y|x) || p(y))),  p(y|x) = softmax(logits [M, K]),  p(y) = E_x p(y|x)

  TF-GAN's `classifier_score_from_logits`.
  """
  return float(tfgan.eval.classifier_score_from_logits(_tensor(logits, tf.float32)))


def inception_score(logits, splits=10):
  """IS over `splits` contiguous splits of logits [M, K]: (mean, std) of the per-split scores (the protocol of
  Salimans et al. 2016; std is numpy's, ddof 0, as in their code)."""
  scores = [classifier_score(logits[a:b]) for a, b in split_bounds(int(np.shape(logits)[0]), splits)]
  return float(np.mean(scores)), float(np.std(scores))


def _squared_distances(a, b):
  """|a_i - b_j|^2 [n, m] for a [n, D], b [m, D] (float32 tensors), clipped at 0."""
  d = (tf.reduce_sum(a * a, axis=1)[:, None] + tf.reduce_sum(b * b, axis=1)[None, :] -
       2.0 * tf.matmul(a, b, transpose_b=True))
  return tf.maximum(d, 0.0)


def _blocks(n, block):
  return [(s, min(n, s + block)) for s in range(0, n, block)]


def knn_radii(features, k, block=1024) -> tf.Tensor:
  """Squared distance of each point of features [N, D] to its k-th nearest neighbour in the set, itself excluded:
  [N] float32. Computed in blocks of rows (memory O(block * N))."""
  x = _tensor(features, tf.float32)
  n = int(x.shape[0])
  if n <= k:
    raise UserError(f"the k-nearest-neighbour metrics need more than k={k} points per set; got {n}")
  out = []
  for s, e in _blocks(n, block):
    # the k+1 smallest include the point itself (distance 0, up to rounding)
    smallest = -tf.math.top_k(-_squared_distances(x[s:e], x), k=k + 1).values
    out.append(smallest[:, k])
  return tf.concat(out, axis=0)


def _inside_counts(points, centers, radii, block=1024):
  """For points [M, D] and balls (centers [N, D], squared radii [N]): how many balls hold each point [M] (int), and
  for each ball whether it holds any point [N] (bool). A point is inside when |p - c|^2 < r^2 (strictly)."""
  c = _tensor(centers, tf.float32)
  counts, any_inside = [], tf.zeros([int(c.shape[0])], tf.bool)
  p = _tensor(points, tf.float32)
  for s, e in _blocks(int(p.shape[0]), block):
    inside = _squared_distances(p[s:e], c) < radii[None, :]
    counts.append(tf.reduce_sum(tf.cast(inside, tf.int32), axis=1))
    any_inside = tf.logical_or(any_inside, tf.reduce_any(inside, axis=0))
  return tf.concat(counts, axis=0), any_inside


def precision_recall(real, fake, k=3):
  """Improved precision and recall (Kynkaanniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
  Generative Models", arXiv 1904.06991):

      precision = 1/M sum_j 1[fake_j in manifold(real)],  recall = 1/N sum_i 1[real_i in manifold(fake)]
      manifold(S) = union over s in S of the ball B(s, |s - NN_k(s)|), NN_k the k-th nearest neighbour in S

  for real [N, D] and fake [M, D]. Returns (precision, recall) as floats in [0, 1].
  """
  real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
  fake_counts, _ = _inside_counts(fake, real, real_radii)
  real_counts, _ = _inside_counts(real, fake, fake_radii)
  return float(tf.reduce_mean(tf.cast(fake_counts > 0, tf.float64))), float(
      tf.reduce_mean(tf.cast(real_counts > 0, tf.float64)))


def density_coverage(real, fake, k=5):
  """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for Generative Models",
  arXiv 2002.09797), with the balls B(real_i, |real_i - NN_k(real_i)|) of the real set only:

      density  = 1/(k M) sum_j sum_i 1[fake_j in B_i]       (about 1 when the sets match; may exceed 1)
      coverage = 1/N sum_i 1[some fake_j in B_i]

  for real [N, D] and fake [M, D]. Returns (density, coverage) as floats.
  """
  radii = knn_radii(real, k)
  counts, covered = _inside_counts(fake, real, radii)
  m = int(np.shape(fake)[0])
  return float(tf.reduce_sum(tf.cast(counts, tf.float64))) / (k * m), float(
      tf.reduce_mean(tf.cast(covered, tf.float64)))
