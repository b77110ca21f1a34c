"""tf.distribute strategies by name.

  default                 the default strategy (one device, no replication)
  one_device              OneDeviceStrategy on the first GPU, or the CPU
  mirrored                MirroredStrategy over all GPUs; with no GPU, over `num_cpu_devices` logical CPUs (a real
                          all-reduce between replicas on one CPU: for testing, not for speed)
  multi_worker_mirrored   MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG environment variable
  tpu                     TPUStrategy on the TPU named by `tpu` ('' = the local TPU VM, 'local', a name or grpc://)
"""

import json
import os

import tensorflow as tf

from icr_tf.errors import ConfigError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")


def split_cpu(num_devices: int) -> None:
  """Splits the CPU into `num_devices` logical devices. Must run before TensorFlow initializes its devices."""
  cpu = tf.config.list_physical_devices("CPU")[0]
  existing = tf.config.get_logical_device_configuration(cpu)
  if existing is not None and len(existing) == num_devices:
    return
  try:
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
  except RuntimeError as e:
    have = len(tf.config.list_logical_devices("CPU"))
    if have >= num_devices:
      return
    raise ConfigError(f"cannot split the CPU into {num_devices} devices: TensorFlow already started with {have} "
                      f"({e}); split it before any TensorFlow work") from None


def make_strategy(name: str, num_cpu_devices: int = 2, tpu: str = "") -> tf.distribute.Strategy:
  """Returns the strategy called `name`; see the module docstring."""
  if name not in STRATEGIES:
    raise ConfigError(f"unknown strategy {name!r}; accepted: {', '.join(STRATEGIES)}")
  if name == "default":
    return tf.distribute.get_strategy()
  gpus = tf.config.list_physical_devices("GPU")
  if name == "one_device":
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
  if name == "mirrored":
    if gpus:
      return tf.distribute.MirroredStrategy()
    if num_cpu_devices < 1:
      raise ConfigError(f"num_cpu_devices must be >= 1; got {num_cpu_devices}")
    split_cpu(num_cpu_devices)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")][:num_cpu_devices]
    return tf.distribute.MirroredStrategy(devices)
  if name == "multi_worker_mirrored":
    config = os.environ.get("TF_CONFIG")
    if config:
      try:
        json.loads(config)
      except ValueError:
        raise ConfigError(f"TF_CONFIG is not JSON: {config[:80]!r}") from None
    return tf.distribute.MultiWorkerMirroredStrategy()
  resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
  tf.config.experimental_connect_to_cluster(resolver)
  tf.tpu.experimental.initialize_tpu_system(resolver)
  return tf.distribute.TPUStrategy(resolver)
