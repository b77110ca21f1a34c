"""The evaluation protocol: sample a generator, extract features, compare with the cached real set, name the numbers.

A metric's name carries its protocol: what, how many generated samples, which real split, which extractor, e.g.
`fid10k_test_fmnist_cnn` (10k samples against Fashion-MNIST test, classifier features) or `fid50k_train_inception_v3`.
FID uses every sample (streamed moments); KID, precision/recall and density/coverage use the first `kernel_samples`
of each set (their count is in their names: `kid10k_test_...`); IS uses the generated logits only (`is10k_...`).

`Evaluator` is the gin-configurable callable of the training loop (`train.evaluator = @Evaluator()`) and of
tools/eval.py: `evaluator(generator, arch, step) -> {name: float}`, with `best_metric` the FID's name.
"""

import dataclasses
import time

import gin
import numpy as np
import tensorflow as tf

from icr_tf import data, models
from icr_tf.errors import UserError
from icr_tf.eval import features as features_lib
from icr_tf.eval import metrics as metrics_lib
from icr_tf.eval import stats as stats_lib

METRICS = ("fid", "kid", "is", "pr", "dc")


def count_name(n) -> str:
  """10000 -> '10k', 50000 -> '50k', 2500 -> '2500'."""
  return f"{n // 1000}k" if n % 1000 == 0 else str(n)


@dataclasses.dataclass(frozen=True)
class Protocol:
  """What is measured. See `Evaluator` for the fields."""
  split: str = "test"
  num_samples: int = 10000
  num_real: int = None
  kernel_samples: int = 10000
  is_splits: int = 10
  pr_k: int = 3
  dc_k: int = 5
  metrics: tuple = METRICS

  @property
  def kept(self):
    return min(self.kernel_samples, self.num_samples)

  def names(self, extractor_name) -> dict:
    """{metric key: name}; keys fid, kid, kid_std, is, is_std, precision, recall, density, coverage."""
    n, k, s, e = count_name(self.num_samples), count_name(self.kept), self.split, extractor_name
    names = {}
    if "fid" in self.metrics:
      names["fid"] = f"fid{n}_{s}_{e}"
    if "kid" in self.metrics:
      names.update(kid=f"kid{k}_{s}_{e}", kid_std=f"kid{k}_{s}_{e}_std")
    if "is" in self.metrics:
      names.update({"is": f"is{n}_{e}", "is_std": f"is{n}_{e}_std"})
    if "pr" in self.metrics:
      names.update(precision=f"precision{k}_{s}_{e}", recall=f"recall{k}_{s}_{e}")
    if "dc" in self.metrics:
      names.update(density=f"density{k}_{s}_{e}", coverage=f"coverage{k}_{s}_{e}")
    return names


@dataclasses.dataclass
class Sampler:
  """A generator seen from outside: fn(z [b, z_dim], labels [b] int32 or None) -> images [b, R, R, C] in [-1, 1]."""
  fn: object
  z_dim: int
  num_classes: int
  resolution: int
  channels: int


def keras_sampler(generator, arch) -> Sampler:
  fn = tf.function(lambda z, labels: models.call_model(generator, arch, z, labels, training=False),
                   reduce_retracing=True)
  return Sampler(fn, arch.z_dim, arch.num_classes, arch.resolution, arch.channels)


class _Progress:
  """Prints "<what> i/n" at each tenth of the way (and at the end)."""

  def __init__(self, what, total, print_fn):
    self.what, self.total, self.print_fn, self.next = what, total, print_fn, 0

  def __call__(self, done):
    if done >= self.next or done == self.total:
      self.print_fn(f"{self.what} {done}/{self.total}")
      self.next = (done * 10 // self.total + 1) * self.total // 10


def real_statistics(source, protocol, resolution, channels, extractor, batch_size=250, cache_root=None,
                    print_fn=print) -> stats_lib.RealStats:
  """The real split's statistics under `extractor`: read from the cache, or computed and cached."""
  split_source = source.with_split(protocol.split)
  available = data.dataset_info(split_source).num_examples
  count = available if protocol.num_real is None else protocol.num_real
  if count > available:
    raise UserError(f"num_real={count} exceeds the {available} images of {source.name}:{protocol.split}")
  _check_count("num_real", count, extractor, protocol)
  key = {"dataset": source.name, "split": protocol.split, "resolution": resolution, "channels": channels,
         "resize_method": source.resize_method, "count": count, "kept": min(protocol.kernel_samples, count),
         **extractor.key()}
  cached = stats_lib.load(key, cache_root)
  if cached is not None:
    print_fn(f"real statistics of {source.name}:{protocol.split} ({count}, {extractor.name}) read from {cached.path}")
    return cached
  acc = stats_lib.FeatureStats(extractor.feature_dim, count, key["kept"])
  progress = _Progress(f"real statistics of {source.name}:{protocol.split} ({extractor.name}):", count, print_fn)
  for images, _ in data.eval_images(split_source, resolution, channels, count, batch_size):
    acc.add(extractor(images)[0].numpy())
    progress(acc.count)
  saved = stats_lib.save(key, acc, cache_root)
  print_fn(f"real statistics written to {saved.path}")
  return saved


def _check_count(what, count, extractor, protocol):
  if "fid" in protocol.metrics and count < extractor.feature_dim:
    raise UserError(f"{what}={count} is below the feature dimension {extractor.feature_dim} of {extractor.name}: "
                    f"FID needs at least {extractor.feature_dim} samples for a full-rank covariance (10000 or 50000 "
                    "for reported numbers)")


def generated_statistics(sampler, extractor, protocol, batch_size=250, seed=0, print_fn=print):
  """Streams `num_samples` generated images through the extractor into FeatureStats (bounded memory).

  z [num_samples, z_dim] ~ N(0, 1) is a function of `seed` alone (not of the batch size); labels cycle 0..K-1.
  """
  n = protocol.num_samples
  z = tf.random.stateless_normal([n, sampler.z_dim], seed=[seed, 0x1C5])
  labels = tf.range(n, dtype=tf.int32) % sampler.num_classes if sampler.num_classes else None
  acc = stats_lib.FeatureStats(extractor.feature_dim, n, protocol.kept,
                               protocol.is_splits if "is" in protocol.metrics else 0)
  progress = _Progress("sampling", n, print_fn)
  for start in range(0, n, batch_size):
    end = min(n, start + batch_size)
    images = sampler.fn(z[start:end], None if labels is None else labels[start:end])
    feats, logits = extractor(images)
    acc.add(feats.numpy(), logits.numpy())
    progress(end)
  return acc


def compare(real: stats_lib.RealStats, fake: stats_lib.FeatureStats, protocol, extractor_name) -> dict:
  """{metric name: float} from the real and generated statistics."""
  names = protocol.names(extractor_name)
  out = {}
  real_kept, fake_kept = real.kept, fake.kept
  if "fid" in names:
    out[names["fid"]] = metrics_lib.frechet_distance_from_moments(real.mean, real.cov, fake.moments.mean,
                                                                  fake.moments.covariance())
  if "kid" in names:
    out[names["kid"]], out[names["kid_std"]] = metrics_lib.kernel_distance(real_kept, fake_kept)
  if "is" in names:
    out[names["is"]], out[names["is_std"]] = fake.inception_score()
  if "precision" in names:
    out[names["precision"]], out[names["recall"]] = metrics_lib.precision_recall(real_kept, fake_kept, protocol.pr_k)
  if "density" in names:
    out[names["density"]], out[names["coverage"]] = metrics_lib.density_coverage(real_kept, fake_kept, protocol.dc_k)
  return out


@gin.configurable(denylist=["source", "print_fn"])
class Evaluator:
  """Evaluates a generator under a fixed protocol; callable as the training loop's evaluator.

  Args (gin-bindable):
    extractor:       a feature extractor, e.g. @inception_extractor(); default @classifier_extractor()
    split:           the real split compared with ('test', 'train')
    num_samples:     generated samples (FID over all of them; 10000 or 50000 for reported numbers)
    num_real:        real images of the split (None: the whole split)
    kernel_samples:  samples of each set for KID, precision/recall, density/coverage (the first ones)
    metrics:         any of 'fid', 'kid', 'is', 'pr', 'dc'
    is_splits:       splits of the generated logits for IS (mean and std over splits)
    batch_size:      images per generator / extractor call
    seed:            seed of the generated z
    cache_root:      where real statistics are cached (default $ICR_TF_CACHE or ~/.cache/icr_tf)
  """

  def __init__(self, extractor=None, split="test", num_samples=10000, num_real=None, kernel_samples=10000,
               metrics=METRICS, is_splits=10, batch_size=250, seed=0, cache_root=None, source=None, print_fn=print):
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
      raise UserError(f"unknown metric(s) {unknown or list(metrics)}; accepted: {', '.join(METRICS)}")
    for name, value in (("num_samples", num_samples), ("kernel_samples", kernel_samples), ("batch_size", batch_size),
                        ("is_splits", is_splits), ("num_real", 1 if num_real is None else num_real)):
      if not isinstance(value, int) or value < 1:
        raise UserError(f"Evaluator.{name} must be a positive integer; got {value!r}")
    self.protocol = Protocol(split, num_samples, num_real, kernel_samples, is_splits, metrics=tuple(metrics))
    if "is" in metrics and num_samples < is_splits:
      raise UserError(f"num_samples={num_samples} is fewer than the {is_splits} IS splits")
    if ("pr" in metrics or "dc" in metrics) and self.protocol.kept <= max(self.protocol.pr_k, self.protocol.dc_k):
      raise UserError(f"kernel_samples={self.protocol.kept} is too few for the k-nearest-neighbour metrics")
    self.extractor = extractor or features_lib.classifier_extractor()
    _check_count("num_samples", num_samples, self.extractor, self.protocol)
    self.names = self.protocol.names(self.extractor.name)
    self.best_metric = self.names.get("fid") or self.names.get("kid")
    self.batch_size, self.seed, self.cache_root = batch_size, seed, cache_root
    self.source, self.print_fn = source, print_fn
    self._real = {}
    self._samplers = {}

  def real_stats(self, source, resolution, channels):
    key = (source, resolution, channels)
    if key not in self._real:
      self.extractor.check_domain(source.name)
      self._real[key] = real_statistics(source, self.protocol, resolution, channels, self.extractor, self.batch_size,
                                        self.cache_root, self.print_fn)
    return self._real[key]

  def evaluate(self, sampler: Sampler) -> dict:
    """{metric name: float} for a sampler, against the real split of `source` (default: gin's data_source())."""
    source = self.source or data.data_source()
    real = self.real_stats(source, sampler.resolution, sampler.channels)
    start = time.time()
    fake = generated_statistics(sampler, self.extractor, self.protocol, self.batch_size, self.seed, self.print_fn)
    results = compare(real, fake, self.protocol, self.extractor.name)
    self.seconds = time.time() - start
    return {k: float(np.float64(v)) for k, v in results.items()}

  def __call__(self, generator, arch, step=None):
    del step
    if id(generator) not in self._samplers:  # one trace per generator, not one per evaluation
      self._samplers[id(generator)] = (generator, keras_sampler(generator, arch))
    return self.evaluate(self._samplers[id(generator)][1])
