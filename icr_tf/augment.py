"""The augmentations T of consistency regularization: pure, stateless and graph-safe.

Images are float tensors [B, H, W, C] in [-1, 1]. Every op is `op(images, rng) -> images` with the same shape and range,
drawing its per-example random values from a `BatchRandom`. The default T of the paper (Zhao et al. 2020, Sec. 3 and
Zhang et al. 2020) is a random horizontal flip and a random translation by up to 1/8 of the image size with reflect
padding: `augment(images, seed)` with `ops=(flip, translate)`.

`BatchRandom` draws for a whole global batch and keeps the slice of one replica, so that a global batch gets the same
augmentation on one device as on N replicas (each replica holds rows [offset, offset + size) of the global batch).
All randomness is stateless (`tf.random.stateless_*`): the same seed gives the same result eagerly, inside
`tf.function` and inside `tf.data.Dataset.map`.
"""

from typing import Callable, Sequence

import gin
import tensorflow as tf

AugmentOp = Callable[[tf.Tensor, "BatchRandom"], tf.Tensor]


class BatchRandom:
  """Per-example random values for rows [offset, offset + size) of a global batch of `global_size` rows.

  Each draw folds a fresh counter into `seed`, so successive draws are independent and the sequence of draws is the
  same whenever the same ops run in the same order.
  """

  def __init__(self, seed, global_size: int, offset=0, size=None):
    self._seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if self._seed.shape.rank == 0:
      self._seed = tf.stack([self._seed, tf.constant(0, tf.int64)])
    self._global_size = global_size
    self._offset = offset
    self._size = global_size if size is None else size
    self._count = 0

  @property
  def size(self) -> int:
    return self._size

  def _next_seed(self):
    self._count += 1
    return tf.random.experimental.stateless_fold_in(self._seed, self._count)

  def _slice(self, values):
    return values[self._offset:self._offset + self._size]

  def uniform(self, shape=(), minval=0.0, maxval=1.0):
    """Floats in [minval, maxval), shape [size, *shape]."""
    return self._slice(tf.random.stateless_uniform([self._global_size, *shape], self._next_seed(), minval, maxval))

  def uniform_int(self, shape=(), minval=0, maxval=2):
    """Integers in [minval, maxval), shape [size, *shape], int32."""
    return self._slice(tf.random.stateless_uniform([self._global_size, *shape], self._next_seed(), minval, maxval,
                                                   dtype=tf.int32))

  def normal(self, shape=(), stddev=1.0):
    """Gaussian floats with mean 0, shape [size, *shape]."""
    return self._slice(tf.random.stateless_normal([self._global_size, *shape], self._next_seed(), stddev=stddev))


def _reflect(index, size):
  """Maps integer indices onto [0, size) by reflection without repeating the edge (as tf.pad's REFLECT)."""
  period = tf.maximum(2 * (size - 1), 1)
  index = tf.math.floormod(index, period)
  return tf.where(index < size, index, period - index)


def translate_by(images, dx, dy):
  """Moves each image right by dx[b] and down by dy[b] pixels, filling with reflect padding.

  out[b, i, j] = images[b, reflect(i - dy[b]), reflect(j - dx[b])]. images [B, H, W, C]; dx, dy int [B].
  """
  height, width = tf.shape(images)[1], tf.shape(images)[2]
  rows = _reflect(tf.range(height)[None, :] - dy[:, None], height)  # [B, H]
  cols = _reflect(tf.range(width)[None, :] - dx[:, None], width)  # [B, W]
  images = tf.gather(images, rows, axis=1, batch_dims=1)
  return tf.gather(images, cols, axis=2, batch_dims=1)


@gin.configurable
def translate(images, rng: BatchRandom, fraction=0.125):
  """Random translation by up to `fraction` of the size in each direction (4 px at 32x32), reflect padding.

  The offsets are uniform integers in [-round(fraction * size), +round(fraction * size)], drawn dx first, then dy.
  """
  max_dx = int(round(fraction * images.shape[2]))
  max_dy = int(round(fraction * images.shape[1]))
  dx = rng.uniform_int(minval=-max_dx, maxval=max_dx + 1)
  dy = rng.uniform_int(minval=-max_dy, maxval=max_dy + 1)
  return translate_by(images, dx, dy)


@gin.configurable
def flip(images, rng: BatchRandom, probability=0.5):
  """Random horizontal flip of each image with the given probability."""
  do_flip = rng.uniform() < probability
  return tf.where(do_flip[:, None, None, None], tf.reverse(images, axis=[2]), images)


@gin.configurable
def cutout(images, rng: BatchRandom, fraction=0.5):
  """Sets a square of side `fraction` * size, centred at a random pixel and clipped at the border, to 0 (mid-grey).

  As in DeVries & Taylor 2017 and the cutout of Zhao et al. 2020 (DiffAugment).
  """
  height, width = images.shape[1], images.shape[2]
  size_h, size_w = int(round(fraction * height)), int(round(fraction * width))
  cy = rng.uniform_int(minval=0, maxval=height)
  cx = rng.uniform_int(minval=0, maxval=width)
  rows = tf.range(height)[None, :]
  cols = tf.range(width)[None, :]
  dr, dc = rows - cy[:, None], cols - cx[:, None]
  in_rows = tf.logical_and(dr >= -(size_h // 2), dr < size_h - size_h // 2)  # [B, H]
  in_cols = tf.logical_and(dc >= -(size_w // 2), dc < size_w - size_w // 2)  # [B, W]
  mask = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])[..., None]
  return tf.where(mask, tf.zeros_like(images), images)


@gin.configurable
def brightness(images, rng: BatchRandom, max_delta=0.5):
  """Adds a per-image uniform offset in [-max_delta, max_delta) (in units of the [0, 1] range), clipped to [-1, 1]."""
  delta = rng.uniform(minval=-max_delta, maxval=max_delta) * 2.0
  return tf.clip_by_value(images + delta[:, None, None, None], -1.0, 1.0)


@gin.configurable
def saturation(images, rng: BatchRandom, lower=0.0, upper=2.0):
  """Scales each image's distance to its per-pixel grey value by a factor in [lower, upper); clipped to [-1, 1].

  Grayscale images are returned unchanged (a random value is still drawn, so later ops see the same draws).
  """
  factor = rng.uniform(minval=lower, maxval=upper)[:, None, None, None]
  if images.shape[-1] == 1:
    return images
  grey = tf.reduce_mean(images, axis=-1, keepdims=True)
  return tf.clip_by_value(grey + (images - grey) * factor, -1.0, 1.0)


@gin.configurable
def contrast(images, rng: BatchRandom, lower=0.5, upper=1.5):
  """Scales each image's distance to its mean value by a factor in [lower, upper); clipped to [-1, 1]."""
  factor = rng.uniform(minval=lower, maxval=upper)[:, None, None, None]
  mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
  return tf.clip_by_value(mean + (images - mean) * factor, -1.0, 1.0)


def identity(images, rng: BatchRandom):
  """T(x) = x: with it every consistency term is exactly 0."""
  del rng
  return images


@gin.configurable
def augment(images, rng_or_seed, ops: Sequence[AugmentOp] = (flip, translate)):
  """T(images): the ops applied in order. `rng_or_seed` is a BatchRandom or a seed (int or [2] int tensor)."""
  if isinstance(rng_or_seed, BatchRandom):
    rng = rng_or_seed
  else:
    rng = BatchRandom(rng_or_seed, global_size=images.shape[0] if images.shape[0] is not None else tf.shape(images)[0])
  for op in ops:
    images = op(images, rng)
  return images
