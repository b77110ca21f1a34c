"""`fashion_mnist_local`: Fashion-MNIST read offline from the IDX files of Debian's `dataset-fashion-mnist`.

A tensorflow-datasets builder, so the embedded default goes through the same tfds path as every other dataset:
`tfds.builder("fashion_mnist_local").download_and_prepare()` reads the four IDX gzip files (no network) and writes
tfrecord shards to the tfds data_dir. 60,000 train and 10,000 test images, 28x28x1 uint8, 10 classes.
The source folder is `/usr/share/datasets/fashion-mnist` unless the builder is given `source_dir` (or the
environment variable ICR_TF_FASHION_MNIST_DIR is set).
"""

import gzip
import os
import struct

import numpy as np
import tensorflow_datasets as tfds

from icr_tf.errors import DataError

DEFAULT_SOURCE_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = ("t-shirt_top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
               "ankle_boot")
_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 60000),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 10000),
}
_INSTALL_HINT = "install Debian's package: apt-get install dataset-fashion-mnist"


def source_dir(override=None) -> str:
  return override or os.environ.get("ICR_TF_FASHION_MNIST_DIR") or DEFAULT_SOURCE_DIR


def check_source(directory) -> None:
  """Raises DataError naming the first missing file and the package that provides it."""
  for images, labels, _ in _FILES.values():
    for name in (images, labels):
      path = os.path.join(directory, name)
      if not os.path.isfile(path):
        raise DataError(f"Fashion-MNIST file {path} is missing; {_INSTALL_HINT} (or point "
                        "ICR_TF_FASHION_MNIST_DIR at a folder holding the four IDX .gz files)")


def read_idx(path, expected_magic, expected_count) -> np.ndarray:
  """Reads an IDX gzip file (LeCun's format): images [N, rows, cols] or labels [N], uint8."""
  try:
    with gzip.open(path, "rb") as f:
      data = f.read()
  except (OSError, EOFError) as e:
    raise DataError(f"Fashion-MNIST file {path} is not readable gzip ({e}); reinstall: {_INSTALL_HINT}") from e
  ndim = expected_magic & 0xFF
  header = 4 + 4 * ndim
  if len(data) < header or struct.unpack(">I", data[:4])[0] != expected_magic:
    raise DataError(f"Fashion-MNIST file {path} is not an IDX file of magic {expected_magic:#x}; "
                    f"reinstall: {_INSTALL_HINT}")
  dims = struct.unpack(f">{ndim}I", data[4:header])
  if dims[0] != expected_count or len(data) != header + int(np.prod(dims)):
    raise DataError(f"Fashion-MNIST file {path} holds {len(data) - header} bytes for dims {dims}; expected "
                    f"{expected_count} items; reinstall: {_INSTALL_HINT}")
  return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


class FashionMnistLocal(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST from local IDX files."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Fashion-MNIST 60k/10k from the IDX files of dataset-fashion-mnist."}

  def __init__(self, *, source_dir=None, **kwargs):  # pylint: disable=redefined-outer-name
    self._source_dir = source_dir
    kwargs.setdefault("file_format", "tfrecord")
    super().__init__(**kwargs)

  def _info(self):
    return self.dataset_info_from_configs(
        description="Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) read from local IDX files.",
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1)),
            "label": tfds.features.ClassLabel(names=CLASS_NAMES),
        }),
        supervised_keys=("image", "label"),
        homepage="https://github.com/zalandoresearch/fashion-mnist",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # nothing is downloaded
    directory = source_dir(self._source_dir)
    check_source(directory)
    return {split: self._generate_examples(directory, split) for split in _FILES}

  def _generate_examples(self, directory, split):
    images_name, labels_name, count = _FILES[split]
    images = read_idx(os.path.join(directory, images_name), 0x803, count)
    labels = read_idx(os.path.join(directory, labels_name), 0x801, count)
    for i in range(count):
      yield i, {"image": images[i][..., None], "label": int(labels[i])}
