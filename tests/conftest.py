"""Test set-up: two logical CPUs (for MirroredStrategy), gin reset around each test, the embedded data prepared once."""

import fcntl
import functools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gin  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from icr_tf import distribute  # noqa: E402

distribute.split_cpu(2)  # before any op runs: tests use both the default strategy and Mirrored over 2 CPUs

from icr_tf import data, loop  # noqa: E402,F401  (registers every configurable)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture(scope="session")
def fashion_mnist():
  """The embedded dataset, prepared once in the tfds data_dir (a file lock keeps parallel workers from racing)."""
  data_dir = data._default_data_dir()  # pylint: disable=protected-access
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, ".icr_tf_prepare.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    data.get_builder(data.DataSource())
    fcntl.flock(lock, fcntl.LOCK_UN)
  return data.DataSource()


TINY_GIN = """
architecture.family = @SNDCGAN
architecture.resolution = 16
architecture.channels = 1
architecture.z_dim = 8
architecture.g_width = 4
architecture.d_width = 4
data_source.name = 'fashion_mnist_local'
data_source.num_examples = 256
data_source.resize_method = 'resize'
train.batch_size = 8
train.log_every = 2
train.checkpoint_every = 2
train.sample_every = 2
train.num_samples = 4
"""


@pytest.fixture
def tiny_config(fashion_mnist):
  """A tiny SNDCGAN on 256 Fashion-MNIST images at 16x16: the whole loop in seconds."""
  del fashion_mnist
  gin.parse_config(TINY_GIN)
  return TINY_GIN


@functools.lru_cache(maxsize=None)
def mirrored():
  """One MirroredStrategy over the 2 logical CPUs for the whole process: two instances in one process can mix up
  their collective instance keys, as a real program (one strategy per process) never does."""
  return distribute.make_strategy("mirrored", num_cpu_devices=2)


__all__ = ["tf", "mirrored", "REPO"]
