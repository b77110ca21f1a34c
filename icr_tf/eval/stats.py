"""Activation statistics in bounded memory, and the on-disk cache of the real set's statistics.

`FeatureStats` streams batches of features [b, D] (and logits [b, K]) into what the metrics need, whatever the number
of samples: the mean [D] and covariance [D, D] in float64 (for FID, merged batch by batch, Chan et al. 1979), the first
`keep` features [keep, D] float32 (for KID, precision/recall, density/coverage), and the IS of each split of the
logits, scored as soon as the split is complete (so at most one split of logits is held). For Inception (D = 2048),
50k samples with keep = 10k hold about 2 x 32 MB of moments and 80 MB of features, not the 400 MB of all features.

Real-set statistics are cached under `cache_dir()` ($ICR_TF_CACHE, else ~/.cache/icr_tf) in stats/, one .npz per key
(dataset, split, resolution, channels, resize method, extractor and its weights' fingerprint, sample count, kept
features), written to a temporary file and renamed, and recomputed only when the key changes.
"""

import dataclasses
import hashlib
import json
import os
import tempfile

import numpy as np

from icr_tf.eval import metrics

CACHE_ENV = "ICR_TF_CACHE"


def cache_dir() -> str:
  """The cache root: $ICR_TF_CACHE, else ~/.cache/icr_tf."""
  return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "icr_tf")


class Moments:
  """Running count, mean [D] and centred sum of outer products [D, D] in float64, merged batch by batch."""

  def __init__(self, dim):
    self.count = 0
    self.mean = np.zeros([dim], np.float64)
    self.m2 = np.zeros([dim, dim], np.float64)

  def update(self, batch):
    x = np.asarray(batch, np.float64)
    b = x.shape[0]
    if b == 0:
      return
    batch_mean = x.mean(axis=0)
    centred = x - batch_mean
    delta = batch_mean - self.mean
    total = self.count + b
    self.m2 += centred.T @ centred + np.outer(delta, delta) * (self.count * b / total)
    self.mean += delta * (b / total)
    self.count = total

  def covariance(self):
    """The unbiased covariance [D, D] (divided by count - 1)."""
    return self.m2 / max(1, self.count - 1)


class FeatureStats:
  """Streams features [b, D] and logits [b, K] of `count` samples (see the module docstring).

  Args:
    dim: the feature dimension D.
    count: the number of samples that will be added (fixes the IS splits).
    keep: how many of the first features are kept for the nearest-neighbour and kernel metrics.
    is_splits: splits of the logits for IS; 0 to skip IS.
  """

  def __init__(self, dim, count, keep, is_splits=0):
    self.moments = Moments(dim)
    self.expected = count
    self.kept = np.zeros([min(keep, count), dim], np.float32)
    self.bounds = metrics.split_bounds(count, is_splits) if is_splits else []
    self.split_logits = []
    self.split_scores = []

  @property
  def count(self):
    return self.moments.count

  def add(self, features, logits=None):
    features = np.asarray(features, np.float32)
    start = self.count
    if start + features.shape[0] > self.expected:
      raise ValueError(f"{start + features.shape[0]} samples added to statistics of {self.expected}")
    take = max(0, min(features.shape[0], self.kept.shape[0] - start))
    self.kept[start:start + take] = features[:take]
    self.moments.update(features)
    if self.bounds and logits is not None:
      self._add_logits(start, np.asarray(logits, np.float32))

  def _add_logits(self, start, logits):
    position = start
    while len(logits):
      _, end = self.bounds[len(self.split_scores)]
      take = min(len(logits), end - position)
      self.split_logits.append(logits[:take])
      logits, position = logits[take:], position + take
      if position == end:
        self.split_scores.append(metrics.classifier_score(np.concatenate(self.split_logits)))
        self.split_logits = []

  def inception_score(self):
    """(mean, std) of the per-split IS (as `metrics.inception_score`), once all samples are in."""
    return float(np.mean(self.split_scores)), float(np.std(self.split_scores))


@dataclasses.dataclass
class RealStats:
  """The cached statistics of a real set: mean [D], covariance [D, D] (float64), the first kept features [keep, D]."""
  key: dict
  mean: np.ndarray
  cov: np.ndarray
  kept: np.ndarray
  path: str
  from_cache: bool


def stats_path(key, root=None) -> str:
  """The cache file of a key: readable name + a hash of the whole key."""
  digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
  name = (f"{key['dataset'].replace('/', '_')}-{key['split']}-{key['resolution']}x{key['resolution']}x"
          f"{key['channels']}-{key['extractor']}-n{key['count']}-{digest}.npz")
  return os.path.join(root or cache_dir(), "stats", name)


def load(key, root=None):
  """The cached RealStats of `key`, or None if there is none (or it is unreadable or of another key)."""
  path = stats_path(key, root)
  if not os.path.exists(path):
    return None
  try:
    with np.load(path) as f:
      if json.loads(str(f["key"])) != key:
        return None
      return RealStats(key, f["mean"], f["cov"], f["kept"], path, True)
  except (OSError, ValueError, KeyError):
    return None


def save(key, feature_stats: FeatureStats, root=None) -> RealStats:
  """Writes the statistics of `key` atomically (temporary file in the same folder, then rename)."""
  path = stats_path(key, root)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  mean, cov = feature_stats.moments.mean, feature_stats.moments.covariance()
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp.npz")
  try:
    with os.fdopen(fd, "wb") as f:
      np.savez(f, key=json.dumps(key, sort_keys=True), mean=mean, cov=cov, kept=feature_stats.kept)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return RealStats(key, mean, cov, feature_stats.kept, path, False)
