"""The data pipeline: the embedded Fashion-MNIST through tfds, any tfds image dataset, resizing, subsets, seeded
resumable shuffling, per-replica input, and clear errors for data that is not there."""

import gzip
import os
import shutil
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from icr_tf import data
from icr_tf.datasets import fashion_mnist_local
from icr_tf.errors import DataError
from tests.conftest import mirrored


class TinyRgb(tfds.core.GeneratorBasedBuilder):
  """A project-made tfds dataset: 40 RGB images 40x30 (not square) with 4 classes, for the generic tfds path."""

  VERSION = tfds.core.Version("1.0.0")

  def _info(self):
    return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(40, 30, 3)), "label": tfds.features.ClassLabel(num_classes=4)}))

  def _split_generators(self, dl_manager):
    return {"train": self._generate_examples(40)}

  def _generate_examples(self, n):
    rng = np.random.RandomState(0)
    for i in range(n):
      yield i, {"image": rng.randint(0, 256, (40, 30, 3)).astype(np.uint8), "label": i % 4}


@pytest.fixture(scope="module")
def tiny_rgb_dir(tmp_path_factory):
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  TinyRgb(data_dir=data_dir, file_format="tfrecord").download_and_prepare()
  return data_dir


def test_fashion_mnist_through_tfds(fashion_mnist):
  info = data.dataset_info(fashion_mnist)
  assert (info.num_examples, info.num_classes) == (60000, 10)
  assert data.dataset_info(fashion_mnist.with_split("test")).num_examples == 10000
  images, labels = next(iter(data.eval_images(fashion_mnist, 32, 1, count=16, batch_size=16)))
  assert images.shape == (16, 32, 32, 1) and labels.shape == (16,)
  assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0
  # 'pad' puts the 28x28 image in the middle of a 32x32 black (-1) frame.
  np.testing.assert_array_equal(images[:, :2].numpy(), -1.0)
  assert float(tf.reduce_max(images[:, 2:30, 2:30])) > 0.0
  assert set(labels.numpy()) <= set(range(10))


def test_fashion_mnist_matches_the_idx_files(fashion_mnist):
  raw = fashion_mnist_local.read_idx(os.path.join(fashion_mnist_local.DEFAULT_SOURCE_DIR,
                                                  "t10k-images-idx3-ubyte.gz"), 0x803, 10000)
  images, _ = next(iter(data.eval_images(fashion_mnist.with_split("test"), 28, 1, count=8, batch_size=8)))
  as_uint8 = data.to_uint8(images).numpy()[..., 0]
  # tfds stores examples in its own order: each image read back is one of the file's images, exactly.
  flat = raw.reshape(10000, -1)
  for image in as_uint8:
    assert np.any(np.all(flat == image.reshape(1, -1), axis=1))


@pytest.mark.parametrize("method,channels", [("resize", 3), ("center_crop", 3), ("pad", 1), ("resize", 1)])
def test_any_tfds_dataset_by_name(tiny_rgb_dir, method, channels):
  source = data.data_source(name="tiny_rgb", data_dir=tiny_rgb_dir, resize_method=method)
  assert data.dataset_info(source).num_classes == 4
  images, labels = next(iter(data.eval_images(source, 16, channels, count=8, batch_size=8)))
  assert images.shape == (8, 16, 16, channels)
  assert float(tf.reduce_min(images)) >= -1.0 and float(tf.reduce_max(images)) <= 1.0
  assert set(labels.numpy()) <= {0, 1, 2, 3} and len(set(labels.numpy())) > 1  # the dataset's own labels


def test_subsets_by_count_and_fraction(fashion_mnist):
  assert data.dataset_info(data.data_source(num_examples=1000)).num_examples == 1000
  assert data.dataset_info(data.data_source(fraction=0.1)).num_examples == 6000
  ds = data.train_dataset(data.data_source(num_examples=100), 32, 1, batch_size=50, seed=0)
  seen = np.concatenate([b[0].numpy().reshape(50, -1) for b, _ in zip(ds, range(4))])
  assert len({row.tobytes() for row in seen}) == 100  # two epochs of the same 100 images


def test_shuffling_is_seeded_and_resumes_at_an_element(fashion_mnist):
  source = data.data_source(num_examples=64)

  def stream(seed, start=0, batches=6):
    ds = data.train_dataset(source, 32, 1, batch_size=16, seed=seed, start_element=start)
    return np.concatenate([images.numpy() for (images, _), _ in zip(ds, range(batches))])

  a, b, c = stream(0), stream(0), stream(1)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, c)
  # Epoch 2 (elements 64..95) is shuffled differently from epoch 1.
  assert not np.array_equal(a[:32], a[64:96])
  # Starting at element 40 continues the same stream exactly, across the epoch boundary.
  np.testing.assert_array_equal(stream(0, start=48, batches=3), a[48:96])


def test_per_replica_batches_make_the_same_global_batch(fashion_mnist):
  source = data.data_source(num_examples=64)
  single = data.train_dataset(source, 16, 1, batch_size=8, seed=3)
  images_single = next(iter(single))[0].numpy()
  strategy = mirrored()
  dist = data.distributed_train_dataset(strategy, source, 16, 1, global_batch_size=8, seed=3, elements_consumed=0)
  per_replica = next(iter(dist))[0]
  parts = strategy.experimental_local_results(per_replica)
  assert len(parts) == 2 and parts[0].shape == (4, 16, 16, 1)
  np.testing.assert_array_equal(np.concatenate([p.numpy() for p in parts]), images_single)


def test_unknown_dataset_is_one_clear_error():
  with pytest.raises(DataError, match="unknown dataset 'cifar_eleven'.*accepted"):
    data.dataset_info(data.data_source(name="cifar_eleven"))


def test_unprepared_dataset_fails_at_once_naming_the_command(tmp_path):
  start = time.monotonic()
  with pytest.raises(DataError, match=r"not prepared.*tfds build cifar10 --data_dir"):
    data.dataset_info(data.data_source(name="cifar10", data_dir=str(tmp_path)))
  with pytest.raises(DataError, match=r"downloads/manual.*tfds build imagenet2012"):
    data.dataset_info(data.data_source(name="imagenet2012", data_dir=str(tmp_path)))
  assert time.monotonic() - start < 30  # no download retry loop


def test_unknown_split_and_bad_options():
  with pytest.raises(DataError, match="no split 'validation'.*accepted: test, train"):
    data.dataset_info(data.data_source(split="validation"))
  with pytest.raises(DataError, match="resize_method 'stretch'"):
    data.data_source(resize_method="stretch")
  with pytest.raises(DataError, match="fraction"):
    data.data_source(fraction=1.5)
  with pytest.raises(DataError, match="exceeds"):
    data.dataset_info(data.data_source(num_examples=10**6))


def test_missing_fashion_mnist_files_name_the_package(tmp_path):
  source = data.data_source(data_dir=str(tmp_path / "tfds"), source_dir=str(tmp_path / "nothing_here"))
  with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
    data.dataset_info(source)
  assert not os.path.exists(tmp_path / "tfds" / "fashion_mnist_local" / "1.0.0" / "dataset_info.json")


def test_corrupt_fashion_mnist_file_is_a_clear_error(tmp_path):
  src = tmp_path / "src"
  shutil.copytree(fashion_mnist_local.DEFAULT_SOURCE_DIR, src)
  with gzip.open(src / "train-labels-idx1-ubyte.gz", "wb") as f:
    f.write(b"\x00\x00\x08\x01" + b"\x00" * 8)  # right magic, wrong count
  source = data.data_source(data_dir=str(tmp_path / "tfds"), source_dir=str(src))
  with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz.*reinstall"):
    data.dataset_info(source)
