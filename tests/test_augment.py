"""Augmentations: shape and range kept, eager == tf.function == tf.data.map, translation by the drawn offset."""

import numpy as np
import pytest
import tensorflow as tf

from icr_tf import augment

OPS = [augment.flip, augment.translate, augment.cutout, augment.brightness, augment.saturation, augment.contrast]


def _images(batch=6, size=16, channels=3, seed=0):
  return tf.random.stateless_uniform([batch, size, size, channels], [seed, 1], -1.0, 1.0)


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.__name__)
@pytest.mark.parametrize("channels", [1, 3])
def test_shape_and_range_kept(op, channels):
  images = _images(channels=channels)
  out = op(images, augment.BatchRandom([3, 4], 6))
  assert out.shape == images.shape
  assert float(tf.reduce_min(out)) >= -1.0 and float(tf.reduce_max(out)) <= 1.0


@pytest.mark.parametrize("ops", [(augment.flip, augment.translate), tuple(OPS)], ids=["default", "all"])
def test_eager_function_and_tf_data_agree(ops):
  images = _images(batch=4)
  seed = tf.constant([7, 11], tf.int64)
  eager = augment.augment(images, seed, ops=ops)
  graph = tf.function(lambda x, s: augment.augment(x, s, ops=ops))(images, seed)
  ds = tf.data.Dataset.from_tensors((images, seed)).map(lambda x, s: augment.augment(x, s, ops=ops))
  in_data = next(iter(ds))
  np.testing.assert_array_equal(eager.numpy(), graph.numpy())
  np.testing.assert_array_equal(eager.numpy(), in_data.numpy())
  assert not np.array_equal(eager.numpy(), images.numpy())


def test_same_seed_same_result_other_seed_other_result():
  images = _images()
  a = augment.augment(images, 1)
  b = augment.augment(images, 1)
  c = augment.augment(images, 2)
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.array_equal(a.numpy(), c.numpy())


def test_translate_by_moves_a_dot_by_the_offset():
  image = np.zeros([2, 16, 16, 1], np.float32)
  image[:, 5, 7, 0] = 1.0
  out = augment.translate_by(tf.constant(image), dx=tf.constant([3, -2]), dy=tf.constant([-4, 1])).numpy()
  assert out[0, 5 - 4, 7 + 3, 0] == 1.0 and out[0].sum() == 1.0
  assert out[1, 5 + 1, 7 - 2, 0] == 1.0 and out[1].sum() == 1.0


def test_translate_by_pads_by_reflection():
  image = tf.reshape(tf.range(5, dtype=tf.float32), [1, 1, 5, 1])  # one row: 0 1 2 3 4
  right = augment.translate_by(image, tf.constant([2]), tf.constant([0]))
  left = augment.translate_by(image, tf.constant([-2]), tf.constant([0]))
  np.testing.assert_array_equal(right.numpy().ravel(), [2, 1, 0, 1, 2])  # as tf.pad(..., 'REFLECT')
  np.testing.assert_array_equal(left.numpy().ravel(), [2, 3, 4, 3, 2])


def test_translate_uses_the_drawn_offsets_up_to_one_eighth():
  images = _images(batch=64, size=32, channels=1)
  out = augment.translate(images, augment.BatchRandom([5, 5], 64))
  replay = augment.BatchRandom([5, 5], 64)  # the same draws, in the same order: dx, then dy
  dx = replay.uniform_int(minval=-4, maxval=5)
  dy = replay.uniform_int(minval=-4, maxval=5)
  assert int(tf.reduce_max(tf.abs(dx))) == 4 and int(tf.reduce_max(tf.abs(dy))) == 4
  np.testing.assert_array_equal(out.numpy(), augment.translate_by(images, dx, dy).numpy())


def test_flip_flips_about_half_and_exactly_mirrors():
  images = _images(batch=400, size=4, channels=1)
  out = augment.flip(images, augment.BatchRandom([1, 2], 400)).numpy()
  flipped = np.all(out == images.numpy()[:, :, ::-1], axis=(1, 2, 3))
  kept = np.all(out == images.numpy(), axis=(1, 2, 3))
  assert np.all(flipped | kept)
  assert 150 < flipped.sum() < 250


def test_cutout_blanks_a_square_of_half_the_side():
  images = tf.ones([50, 16, 16, 1])
  out = augment.cutout(images, augment.BatchRandom([0, 9], 50)).numpy()
  blank = (out == 0).sum(axis=(1, 2, 3))
  assert blank.max() == 8 * 8  # a full 8x8 square when it is not clipped by the border
  assert blank.min() >= 4 * 4  # a quarter of it at worst (centred in a corner)


def test_batch_random_slices_of_a_global_batch_match_the_whole():
  whole = augment.BatchRandom([4, 2], 8).normal([3]).numpy()
  first = augment.BatchRandom([4, 2], 8, offset=0, size=4).normal([3]).numpy()
  second = augment.BatchRandom([4, 2], 8, offset=4, size=4).normal([3]).numpy()
  np.testing.assert_array_equal(np.concatenate([first, second]), whole)


def test_identity_is_identity():
  images = _images()
  np.testing.assert_array_equal(augment.augment(images, 0, ops=(augment.identity,)).numpy(), images.numpy())
