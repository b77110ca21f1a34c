"""Evaluating saved generators: the latest, the best or every checkpoint of a model_dir, or an exported SavedModel;
and baselines that stand in for a generator (real images of a split, or uniform noise) to calibrate the numbers.

An exported SavedModel (<model_dir>/export/<version>/) is sampled through its `from_z` signature: z float32
[N, z_dim] (and labels int32 [N] for a conditional model) -> {'images_float': float32 [N, R, R, C] in [-1, 1]}.
Its data source comes from the run.json two folders up when there is one, else from gin (data_source); its number
of classes as `export.load_from_z` finds it.
"""

import numpy as np
import tensorflow as tf

from icr_tf import checkpoints, data, export
from icr_tf.errors import UserError
from icr_tf.eval.evaluator import Evaluator, Sampler

IMAGES = "images_float"


def saved_model_sampler(path, num_classes=None) -> Sampler:
  """A Sampler over the `from_z` signature of the export at `path` (its `images_float` output)."""
  model = export.load_from_z(path, num_classes)

  def fn(z, labels):
    kwargs = {"z": tf.convert_to_tensor(z, tf.float32)}
    if model.num_classes:
      kwargs["labels"] = tf.convert_to_tensor(labels, tf.int32)
    return model.fn(**kwargs)[IMAGES]

  probe = fn(tf.zeros([1, model.z_dim]), tf.zeros([1], tf.int32) if model.num_classes else None)
  sampler = Sampler(fn, model.z_dim, model.num_classes, int(probe.shape[1]), int(probe.shape[3]))
  sampler.loaded = model.loaded  # keeps the variables alive
  return sampler


def evaluate_checkpoints(model_dir, which="latest", print_fn=print, **evaluator_kwargs):
  """Evaluates the checkpoints `which` (latest, best, every, a step, a path) of a model_dir, against the run's own
  data. Returns (rows [{'step', 'checkpoint', name: value}], evaluator)."""
  paths = checkpoints.find_checkpoints(model_dir, which)
  source = data.DataSource(**checkpoints.run_info(model_dir)["data"])
  evaluator = Evaluator(source=source, print_fn=print_fn, **evaluator_kwargs)
  rows = []
  for path in paths:
    generator, arch, step = checkpoints.load_generator(model_dir, path)
    print_fn(f"evaluating {path} (step {step})")
    rows.append({"step": step, "checkpoint": path, **evaluator(generator, arch, step)})
  return rows, evaluator


def evaluate_saved_model(path, num_classes=None, print_fn=print, **evaluator_kwargs):
  """Evaluates an exported SavedModel. Returns ([{'step': None, 'checkpoint': path, name: value}], evaluator)."""
  sampler = saved_model_sampler(path, num_classes)
  run = export.run_of_export(path)
  source = data.DataSource(**run["data"]) if run else data.data_source()
  evaluator = Evaluator(source=source, print_fn=print_fn, **evaluator_kwargs)
  print_fn(f"evaluating {path}")
  return [{"step": None, "checkpoint": path, **evaluator.evaluate(sampler)}], evaluator


class _RealImages:
  """A sampler function that ignores z and returns the next len(z) images of a split, in fixed order."""

  def __init__(self, source, resolution, channels):
    self.batches = iter(data.eval_images(source, resolution, channels, data.dataset_info(source).num_examples, 500))
    self.buffer = np.zeros([0, resolution, resolution, channels], np.float32)

  def __call__(self, z, labels):
    del labels
    n = int(z.shape[0])
    while len(self.buffer) < n:
      self.buffer = np.concatenate([self.buffer, next(self.batches)[0].numpy()])
    out, self.buffer = self.buffer[:n], self.buffer[n:]
    return tf.constant(out)


BASELINES = ("train", "test", "noise")


def baseline_sampler(kind, source, resolution, channels, num_samples, seed=0) -> Sampler:
  """Stands in for a generator: the images of split `kind` ('train', 'test') as the run reads them, or uniform
  noise in [-1, 1] ('noise')."""
  if kind == "noise":
    rng = np.random.default_rng(seed)
    fn = lambda z, labels: tf.constant(rng.uniform(-1, 1, [int(z.shape[0]), resolution, resolution, channels]),
                                       tf.float32)
    return Sampler(fn, 1, 0, resolution, channels)
  split = source.with_split(kind)
  available = data.dataset_info(split).num_examples
  if num_samples > available:
    raise UserError(f"the {kind} baseline has {available} images, fewer than num_samples={num_samples}")
  return Sampler(_RealImages(split, resolution, channels), 1, 0, resolution, channels)


def evaluate_baseline(model_dir, kind, print_fn=print, **evaluator_kwargs):
  """Evaluates a baseline at the resolution and against the data of a run. Returns (rows, evaluator)."""
  if kind not in BASELINES:
    raise UserError(f"unknown baseline {kind!r}; accepted: {', '.join(BASELINES)}")
  source = data.DataSource(**checkpoints.run_info(model_dir)["data"])
  arch = checkpoints.architecture_of(model_dir)
  evaluator = Evaluator(source=source, print_fn=print_fn, **evaluator_kwargs)
  sampler = baseline_sampler(kind, source, arch.resolution, arch.channels, evaluator.protocol.num_samples,
                             evaluator.seed)
  print_fn(f"evaluating the {kind} baseline")
  return [{"step": None, "checkpoint": f"baseline:{kind}", **evaluator.evaluate(sampler)}], evaluator


def _head(row):
  if row["step"] is not None:
    return f"step {row['step']}"
  return row["checkpoint"] if row["checkpoint"].startswith("baseline:") else "saved_model"


def format_table(rows, names) -> str:
  """Metrics down, checkpoints across: one column per row ('step N', 'saved_model' or 'baseline:<kind>')."""
  heads = [_head(r) for r in rows]
  width = max(len(n) for n in names) + 2
  col = max(14, max(len(h) for h in heads) + 2)
  lines = ["metric".ljust(width) + "".join(h.rjust(col) for h in heads)]
  for name in names:
    lines.append(name.ljust(width) + "".join(f"{r[name]:{col}.4f}" for r in rows))
  return "\n".join(lines)
