"""Datasets -> tf.data of images in [-1, 1] at the model's resolution, and integer labels.

Every dataset goes through tensorflow-datasets: any tfds image dataset by name (cifar10, mnist, fashion_mnist, celeb_a,
imagenet2012, lsun/bedroom, ...) once prepared in the tfds data_dir, and the embedded default `fashion_mnist_local`,
which the project's own tfds builder prepares offline from Debian's `dataset-fashion-mnist`. Nothing here downloads:
a dataset that is not prepared is one clear error that names the command that prepares it.

Training input is an endless stream: epoch e is the (sharded, cached) split shuffled with seed (seed, e), so the stream
is a pure function of the seed, and a run resumed at step s starts at element s * n_dis * batch of that stream, which
is where the interrupted run stood ("data position"), without replaying the data.
"""

import dataclasses
import os

import gin
import tensorflow as tf
import tensorflow_datasets as tfds

from icr_tf.datasets import fashion_mnist_local
from icr_tf.errors import DataError

EMBEDDED = "fashion_mnist_local"
RESIZE_METHODS = ("pad", "resize", "center_crop")
_GRAPH_SEED = 0x1C3
_MANUAL = {"imagenet2012": "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar",
           "celeb_a_hq": "the CelebA-HQ images made with the progressive_growing_of_gans scripts"}


@dataclasses.dataclass(frozen=True)
class DataSource:
  """Where the images come from and how they are read; see `data_source` for the meaning of each field."""
  name: str = EMBEDDED
  split: str = "train"
  data_dir: str = None
  num_examples: int = None
  fraction: float = None
  resize_method: str = "pad"
  image_key: str = "image"
  label_key: str = "label"
  shuffle_buffer: int = 60000
  cache: bool = True
  source_dir: str = None

  def with_split(self, split, num_examples=None, fraction=None):
    return dataclasses.replace(self, split=split, num_examples=num_examples, fraction=fraction)


@gin.configurable
def data_source(name=EMBEDDED, split="train", data_dir=None, num_examples=None, fraction=None, resize_method="pad",
                image_key="image", label_key="label", shuffle_buffer=60000, cache=True, source_dir=None):
  """The training data of a run.

  Args:
    name: a tfds dataset name (with config: 'lsun/bedroom'), or 'fashion_mnist_local' (the embedded default).
    split: a tfds split name ('train', 'test', ...).
    data_dir: the tfds data_dir; None means tfds' default (TFDS_DATA_DIR or ~/tensorflow_datasets).
    num_examples / fraction: use only the first N examples, or that fraction, of the split (limited-data runs).
    resize_method: 'pad' (pad or centre-crop to the resolution: 28 -> 32), 'resize' (bilinear, aspect not kept),
      'center_crop' (largest centred square, then area resize: CelebA, ImageNet, LSUN).
    image_key / label_key: feature names; a dataset without `label_key` gets label 0 for every image.
    shuffle_buffer: the shuffle buffer, in examples (the whole split for small ones).
    cache: keep the decoded, resized uint8 split in memory (fits for 32x32 sets; turn off for ImageNet).
    source_dir: for 'fashion_mnist_local', the folder of the IDX files.
  """
  if resize_method not in RESIZE_METHODS:
    raise DataError(f"unknown data_source.resize_method {resize_method!r}; accepted: {', '.join(RESIZE_METHODS)}")
  if num_examples is not None and fraction is not None:
    raise DataError("give data_source.num_examples or data_source.fraction, not both")
  if num_examples is not None and (not isinstance(num_examples, int) or num_examples < 1):
    raise DataError(f"data_source.num_examples must be a positive integer; got {num_examples!r}")
  if fraction is not None and not 0 < fraction <= 1:
    raise DataError(f"data_source.fraction must be in (0, 1]; got {fraction!r}")
  return DataSource(name, split, data_dir, num_examples, fraction, resize_method, image_key, label_key, shuffle_buffer,
                    cache, source_dir)


def _default_data_dir():
  return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def get_builder(source: DataSource):
  """The tfds builder of a source, prepared. Raises DataError if it is unknown or not prepared."""
  data_dir = source.data_dir or _default_data_dir()
  if source.name == EMBEDDED:
    builder = fashion_mnist_local.FashionMnistLocal(data_dir=data_dir, source_dir=source.source_dir)
    if not builder.is_prepared():
      fashion_mnist_local.check_source(fashion_mnist_local.source_dir(source.source_dir))
      builder.download_and_prepare()
    return builder
  try:
    builder = tfds.builder(source.name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise DataError(f"unknown dataset {source.name!r}: not a tensorflow-datasets name; accepted: {EMBEDDED} (embedded) "
                    "or a tfds image dataset such as cifar10, mnist, fashion_mnist, celeb_a, imagenet2012, "
                    "lsun/bedroom") from None
  except Exception as e:  # tfds raises several types for a bad config name ('lsun/nope').
    raise DataError(f"dataset {source.name!r} cannot be opened by tensorflow-datasets: {e}") from None
  if not builder.is_prepared():
    base = source.name.split("/")[0]
    if base in _MANUAL:
      how = (f"put {_MANUAL[base]} in {os.path.join(data_dir, 'downloads', 'manual')}, then run "
             f"`tfds build {source.name} --data_dir {data_dir}`")
    else:
      how = f"on a machine with internet run `tfds build {source.name} --data_dir {data_dir}` and copy {data_dir} here"
    raise DataError(f"dataset {source.name!r} is not prepared in {data_dir}: {how} (nothing is downloaded at run time)")
  return builder


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  num_examples: int
  num_classes: int


def dataset_info(source: DataSource, builder=None) -> DatasetInfo:
  """The number of examples a source gives (after num_examples / fraction) and its number of classes (0 if none)."""
  builder = builder or get_builder(source)
  splits = builder.info.splits
  if source.split not in splits:
    raise DataError(f"dataset {source.name!r} has no split {source.split!r}; accepted: {', '.join(sorted(splits))}")
  total = splits[source.split].num_examples
  count = total
  if source.num_examples is not None:
    if source.num_examples > total:
      raise DataError(f"data_source.num_examples={source.num_examples} exceeds the {total} examples of "
                      f"{source.name}:{source.split}")
    count = source.num_examples
  elif source.fraction is not None:
    count = max(1, int(total * source.fraction))
  features = builder.info.features
  label = features[source.label_key] if source.label_key and source.label_key in features.keys() else None
  num_classes = getattr(label, "num_classes", 0) or 0
  return DatasetInfo(count, num_classes)


def to_resolution(image, resolution, channels, method):
  """uint8 [h, w, c] -> uint8 [resolution, resolution, channels] by `method`; grayscale <-> RGB as needed."""
  if image.shape[-1] == 1 and channels == 3:
    image = tf.image.grayscale_to_rgb(image)
  elif image.shape[-1] == 3 and channels == 1:
    image = tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), tf.uint8)
  if method == "pad":
    return tf.image.resize_with_crop_or_pad(image, resolution, resolution)
  if method == "center_crop":
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    image = tf.image.crop_to_bounding_box(image, (shape[0] - side) // 2, (shape[1] - side) // 2, side, side)
    resized = tf.image.resize(image, [resolution, resolution], method="area", antialias=True)
  else:
    resized = tf.image.resize(image, [resolution, resolution], method="bilinear", antialias=True)
  return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def to_float(images):
  """uint8 in [0, 255] -> float32 in [-1, 1]."""
  return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images):
  """float in [-1, 1] -> uint8 in [0, 255], rounded and clipped."""
  return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8)


def load_examples(source: DataSource, resolution, channels, num_shards=1, shard_index=0):
  """The split as a tf.data of (uint8 image [R, R, C], int32 label), in tfds' fixed order, before any shuffling."""
  builder = get_builder(source)
  info = dataset_info(source, builder)
  ds = builder.as_dataset(split=f"{source.split}[:{info.num_examples}]", shuffle_files=False)
  if num_shards > 1:
    ds = ds.shard(num_shards, shard_index)
  has_label = info.num_classes > 0

  def convert(example):
    image = to_resolution(example[source.image_key], resolution, channels, source.resize_method)
    label = tf.cast(example[source.label_key], tf.int32) if has_label else tf.constant(0, tf.int32)
    return image, label

  return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)


def train_dataset(source: DataSource, resolution, channels, batch_size, seed=0, start_element=0, num_shards=1,
                  shard_index=0):
  """Endless shuffled batches (images float [b, R, R, C] in [-1, 1], labels int32 [b]), starting at element
  `start_element` of this shard's stream. Epoch e is shuffled with seed (seed, e)."""
  base = load_examples(source, resolution, channels, num_shards, shard_index)
  if source.cache:
    base = base.cache()
  size = int(base.cardinality())
  if size < 0:
    size = int(base.reduce(0, lambda n, _: n + 1))
  if size < batch_size:
    raise DataError(f"{source.name}:{source.split} gives {size} examples to this input pipeline, fewer than its batch "
                    f"of {batch_size}")
  buffer = max(1, min(source.shuffle_buffer, size))
  start_epoch, offset = divmod(int(start_element), size)

  def epoch(e):  # traced once, as a graph function, by flat_map
    # Dataset.shuffle mixes its seed with the graph seed (tf.random.set_seed), and fails on a tensor seed when that
    # is 0; fixing the graph seed of this function makes the order a function of `seed` and the epoch alone.
    tf.compat.v1.get_default_graph().seed = _GRAPH_SEED
    return base.shuffle(buffer, seed=tf.cast(seed, tf.int64) * 1000003 + e, reshuffle_each_iteration=False)

  ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch).skip(offset)
  ds = ds.batch(batch_size, drop_remainder=True)
  ds = ds.map(lambda images, labels: (to_float(images), labels), num_parallel_calls=tf.data.AUTOTUNE)
  return ds.prefetch(tf.data.AUTOTUNE)


def distributed_train_dataset(strategy, source: DataSource, resolution, channels, global_batch_size, seed,
                              elements_consumed):
  """Per-replica batches under `strategy`, through `distribute_datasets_from_function`.

  `elements_consumed` is the number of examples the whole run has read so far; each input pipeline starts at its share.
  """

  def dataset_fn(context: tf.distribute.InputContext):
    per_replica = context.get_per_replica_batch_size(global_batch_size)
    start = elements_consumed // context.num_input_pipelines
    return train_dataset(source, resolution, channels, per_replica, seed, start, context.num_input_pipelines,
                         context.input_pipeline_id)

  return strategy.distribute_datasets_from_function(dataset_fn)


def eval_images(source: DataSource, resolution, channels, count, batch_size):
  """The first `count` images of the split in fixed order, float in [-1, 1], in batches (last one may be short)."""
  info = dataset_info(source)
  if count > info.num_examples:
    raise DataError(f"{count} images asked of {source.name}:{source.split}, which has {info.num_examples}")
  ds = load_examples(source, resolution, channels).take(count)
  return ds.batch(batch_size).map(lambda images, labels: (to_float(images), labels)).prefetch(tf.data.AUTOTUNE)
