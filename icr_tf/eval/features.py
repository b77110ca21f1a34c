"""Feature extractors: images [N, R, R, C] in [-1, 1] in, (features [N, D], logits [N, K]) float32 out.

Two are provided, both SavedModels called as `module(images) -> {name: tensor}` and chosen in gin by reference
(`Evaluator.extractor = @inception_extractor()`) or by tools/eval.py's --extractor flag:

  inception_v3  TF-GAN's Inception-v3 TF-Hub module (https://tfhub.dev/tensorflow/tfgan/eval/inception/1), the FID
                network of the paper: images resized (bilinear) to 299x299x3 in [-1, 1], features `pool_3` [N, 2048],
                logits `logits` [N, 1008] (for IS). Loaded from a local copy or a TF-Hub handle; see README.
  fmnist_cnn    the project's Fashion-MNIST classifier (tools/train_classifier.py, saved in CLASSIFIER_DIR):
                images at 32x32x1 in [-1, 1] (28x28 padded, as the default run's), features of its penultimate
                layer [N, 128], logits [N, 10]. For the embedded data, where no Inception weights can be had.

Images are resized bilinearly (antialiased when shrunk); grayscale ones are repeated to three channels for Inception,
RGB ones turned to gray for the classifier.
Each extractor has a fingerprint (a hash of its SavedModel's files) that keys the cached real statistics.
"""

import dataclasses
import hashlib
import json
import os

import gin
import tensorflow as tf
import tensorflow_hub as hub

from icr_tf.compat import tfgan
from icr_tf.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLASSIFIER_DIR = os.path.join(REPO, "runs", "classifiers", "fashion_mnist_cnn")  # where train_classifier.py saves
CLASSIFIER_JSON = "classifier.json"  # next to the SavedModel: test accuracy and how it was trained
INCEPTION_HANDLE = tfgan.eval.INCEPTION_TFHUB


@dataclasses.dataclass(frozen=True)
class ExtractorSpec:
  """What an extractor's SavedModel takes and gives."""
  name: str  # short name, part of every metric name
  input_size: int  # images are resized to input_size x input_size
  input_channels: int
  feature_key: str
  logits_key: str
  feature_dim: int  # None: any
  domains: tuple = None  # dataset names it is meant for; None: any

  def describe(self):
    dim = self.feature_dim or "D"
    return (f"a SavedModel callable on float32 images [N, {self.input_size}, {self.input_size}, "
            f"{self.input_channels}] in [-1, 1] that returns {{'{self.feature_key}': [N, {dim}], "
            f"'{self.logits_key}': [N, K]}}")


INCEPTION = ExtractorSpec("inception_v3", 299, 3, tfgan.eval.INCEPTION_FINAL_POOL, tfgan.eval.INCEPTION_OUTPUT, 2048)
CLASSIFIER = ExtractorSpec("fmnist_cnn", 32, 1, "features", "logits", None, ("fashion_mnist_local", "fashion_mnist"))


def fingerprint(path) -> str:
  """sha256 of the files of a SavedModel folder (names and contents), first 16 hex digits."""
  digest = hashlib.sha256()
  for root, dirs, files in os.walk(path):
    dirs.sort()
    for name in sorted(files):
      full = os.path.join(root, name)
      digest.update(os.path.relpath(full, path).encode() + b"\0")
      with open(full, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
          digest.update(chunk)
  return digest.hexdigest()[:16]


def _is_handle(path):
  return path.startswith(("http://", "https://", "gs://"))


def _resolve(path, spec):
  """A local folder for `path`: the path itself, or a TF-Hub handle resolved (downloaded once) by tensorflow_hub."""
  if _is_handle(path):
    try:
      return hub.resolve(path)
    except Exception as e:  # network or format errors of any kind
      raise UserError(f"cannot fetch the {spec.name} module {path} ({type(e).__name__}); on a machine without "
                      "internet point the extractor path at a local copy (see README)") from None
  if not os.path.isdir(path):
    raise UserError(f"extractor path {path} does not exist; accepted: a folder holding {spec.describe()}")
  if not os.path.exists(os.path.join(path, "saved_model.pb")):
    raise UserError(f"extractor path {path} holds no SavedModel (no saved_model.pb); accepted: {spec.describe()}")
  return path


class Extractor:
  """A feature extractor: `extractor(images [N, R, R, C] in [-1, 1]) -> (features [N, D], logits [N, K])`.

  Attributes: spec, path (the local folder), fingerprint, feature_dim (D), num_logits (K), info (the classifier.json
  next to the SavedModel, if any).
  """

  def __init__(self, spec: ExtractorSpec, path: str):
    self.spec = spec
    self.path = _resolve(path, spec)
    try:
      self.module = hub.load(self.path)  # tf.saved_model.load, with the tags of a TF1-format Hub module if it is one
    except Exception as e:  # a corrupt or foreign folder fails in many ways
      raise UserError(f"extractor path {path} cannot be loaded as a SavedModel ({type(e).__name__}); accepted: "
                      f"{spec.describe()}") from None
    self.feature_dim, self.num_logits = self._probe(path)
    self.fingerprint = fingerprint(self.path)
    info_path = os.path.join(self.path, CLASSIFIER_JSON)
    self.info = {}
    if os.path.exists(info_path):
      with open(info_path) as f:
        self.info = json.load(f)
    self._call = tf.function(self._features_and_logits, reduce_retracing=True)

  @property
  def name(self):
    return self.spec.name

  def _raw(self, images):
    out = self.module(images)
    if not isinstance(out, dict) or self.spec.feature_key not in out or self.spec.logits_key not in out:
      got = sorted(out) if isinstance(out, dict) else type(out).__name__
      raise KeyError(f"outputs {got}")
    n = tf.shape(images)[0]
    return (tf.reshape(tf.cast(out[self.spec.feature_key], tf.float32), [n, -1]),
            tf.reshape(tf.cast(out[self.spec.logits_key], tf.float32), [n, -1]))

  def _probe(self, path):
    """Calls the module on 2 blank images; a module of another signature is a UserError."""
    size, channels = self.spec.input_size, self.spec.input_channels
    try:
      features, logits = self._raw(tf.zeros([2, size, size, channels]))
    except Exception as e:  # pylint: disable=broad-except  (TypeError, ValueError, KeyError, InvalidArgumentError)
      reason = " ".join(str(e).split())[:160]
      raise UserError(f"extractor path {path} has another signature ({type(e).__name__}: {reason}); accepted: "
                      f"{self.spec.describe()}") from None
    dim = int(features.shape[1])
    if self.spec.feature_dim is not None and dim != self.spec.feature_dim:
      raise UserError(f"extractor path {path} gives {self.spec.feature_key} of dimension {dim}; accepted: "
                      f"{self.spec.describe()}")
    return dim, int(logits.shape[1])

  def _features_and_logits(self, images):
    size, channels = self.spec.input_size, self.spec.input_channels
    if images.shape[-1] == 1 and channels == 3:
      images = tf.tile(images, [1, 1, 1, 3])
    elif images.shape[-1] == 3 and channels == 1:
      images = tf.image.rgb_to_grayscale(images)
    if images.shape[1] != size or images.shape[2] != size:
      # bilinear, as TF-GAN's examples feed Inception; antialiasing only matters (and only costs) when shrinking
      images = tf.image.resize(images, [size, size], method="bilinear", antialias=images.shape[1] > size)
    return self._raw(tf.clip_by_value(images, -1.0, 1.0))

  def __call__(self, images):
    """images float [N, R, R, C] in [-1, 1] -> (features [N, D], logits [N, K]) float32 tensors."""
    return self._call(tf.convert_to_tensor(images, tf.float32))

  def check_domain(self, dataset):
    """Refuses a domain extractor on data it was not trained for."""
    if self.spec.domains and dataset not in self.spec.domains:
      raise UserError(f"the {self.name} extractor is trained on {self.spec.domains[0]} and cannot judge {dataset!r}; "
                      "use the Inception extractor (--extractor=inception) for other data")

  def key(self) -> dict:
    return {"extractor": self.name, "extractor_fingerprint": self.fingerprint}


@gin.configurable
def inception_extractor(path=None) -> Extractor:
  """TF-GAN's Inception-v3 (pool_3, logits) from `path`: a local copy of the TF-Hub module or its handle."""
  if not path:
    raise UserError(f"no Inception module given: set --extractor_path (gin: inception_extractor.path) to a local "
                    f"copy of {INCEPTION_HANDLE} (see README), or to that handle on a machine with internet")
  return Extractor(INCEPTION, path)


@gin.configurable
def classifier_extractor(path=CLASSIFIER_DIR) -> Extractor:
  """The project's Fashion-MNIST classifier (penultimate features, logits) from `path`."""
  if not os.path.isdir(path):
    where = "" if path == CLASSIFIER_DIR else f" --output_dir={path}"
    raise UserError(f"no Fashion-MNIST classifier in {path}: train it first with "
                    f"`.venv/bin/python tools/train_classifier.py{where}` (a few minutes on CPU)")
  return Extractor(CLASSIFIER, path)
