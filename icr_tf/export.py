"""A run's generator as a SavedModel for TF Serving; seeded latents; sample and interpolation grids.

`export` writes <model_dir>/export/<version>/ (versions 1, 2, ...: the layout TF Serving watches), tag `serve`, with
three signatures (N images of H x W x C; `labels` only for a conditional model):
  serving_default(seed int64 [], count int32 [], labels int32 [N]) -> images uint8 [N, H, W, C]
  from_z(z float32 [N, z_dim], labels int32 [N])   -> images uint8 [N, H, W, C], images_float float32 in [-1, 1]
  png(seed int64 [], count int32 [], labels int32 [N]) -> png_bytes string [N], one PNG file per image (TF Serving's
                                                       REST API sends outputs named *_bytes base64-encoded)
serving_default and png draw z = latents(seed, count, z_dim, truncation): the same seed gives the same images in any
process. Requests are checked inside the graph: count (or N) outside [1, max_count], z of another width, labels
outside [0, num_classes) or not one per image fail with InvalidArgument naming the rule; nothing is clipped.
Each version is written to a hidden temporary folder and renamed, so a watching server never sees half of one;
assets.extra/export.json records the checkpoint, step, architecture, max_count and truncation.
"""

import dataclasses
import json
import math
import os
import shutil

import numpy as np
import tensorflow as tf

from icr_tf import checkpoints, data, images, models
from icr_tf.errors import UserError

EXPORT = "export"
INFO = os.path.join("assets.extra", "export.json")
SIGNATURES = ("serving_default", "from_z", "png")


def latents(seed, count, z_dim, truncation=None):
  """z float32 [count, z_dim], a function of the int64 seed only (stateless: equal in any process).

  Without truncation z ~ N(0, 1) (the draw of loop.sample_inputs). With truncation t > 0, each z_i follows the
  standard normal truncated to [-t, t] (the truncation trick of BigGAN, which resamples |z_i| > t), drawn exactly by
  the inverse CDF: z_i = Phi^-1(u_i), u_i ~ U(Phi(-t), Phi(t)); nothing is clipped but float64 rounding.
  """
  seed = tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
  shape = tf.stack([tf.cast(count, tf.int32), z_dim])
  if truncation is None:
    return tf.random.stateless_normal(shape, seed=seed)
  low = 0.5 * math.erfc(truncation / math.sqrt(2.0))  # Phi(-t)
  u = tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=1.0 - low, dtype=tf.float64)
  return tf.clip_by_value(tf.cast(tf.math.ndtri(u), tf.float32), -truncation, truncation)


class ServingModule(tf.Module):
  """The generator's three serving signatures (see the module docstring), checked requests, and its variables."""

  def __init__(self, generator, arch, max_count, truncation):
    super().__init__(name="icr_tf_generator")
    # The tf.Variables under the Keras ones (BN statistics too): TF Serving's C++ loader finds only what is tracked
    # here, and neither the Keras model nor its keras.Variable wrappers are enough for it.
    self.generator_variables = [v.value for v in generator.variables]
    self._arch = arch
    self._generate = lambda z, labels: models.call_model(generator, arch, z, labels, training=False)  # untracked
    self.max_count, self.truncation = max_count, truncation
    seed, count = tf.TensorSpec([], tf.int64, name="seed"), tf.TensorSpec([], tf.int32, name="count")
    z = tf.TensorSpec([None, arch.z_dim], tf.float32, name="z")
    extra = [tf.TensorSpec([None], tf.int32, name="labels")] if arch.conditional else []
    self.serving_default = tf.function(self._serving_default, input_signature=[seed, count] + extra)
    self.from_z = tf.function(self._from_z, input_signature=[z] + extra)
    self.png = tf.function(self._png, input_signature=[seed, count] + extra)

  def _checked(self, n, labels, what):
    """Asserts on n (count or rows of z) and labels; returns them, to be used only after the asserts ran."""
    limit = f"must be in [1, {self.max_count}] (max_count of this export)"
    checks = [tf.debugging.assert_positive(n, message=f"{what} {limit}"),  # (TF's conv kernels mishandle empty batches)
              tf.debugging.assert_less_equal(n, self.max_count, message=f"{what} {limit}")]
    if self._arch.conditional:
      k = self._arch.num_classes
      checks += [tf.debugging.assert_equal(tf.size(labels), n, message=f"labels must hold one class id per image "
                                           f"({what} of them)"),
                 tf.debugging.assert_non_negative(labels, message=f"labels must be class ids in [0, {k})"),
                 tf.debugging.assert_less(labels, k, message=f"labels must be class ids in [0, {k})")]
    with tf.control_dependencies(checks):
      return tf.identity(n), None if labels is None else tf.identity(labels)

  def _images(self, z, labels):
    images_float = self._generate(z, labels)
    return {"images": data.to_uint8(images_float), "images_float": images_float}

  def _seeded(self, seed, count, labels):
    count, labels = self._checked(count, labels, "count")
    return self._images(latents(seed, count, self._arch.z_dim, self.truncation), labels)

  def _serving_default(self, seed, count, labels=None):
    return {"images": self._seeded(seed, count, labels)["images"]}

  def _from_z(self, z, labels=None):
    # The signature fixes [None, z_dim], but TF Serving's C++ session does not check fed shapes: check again.
    rule = f"z must be float32 [N, {self._arch.z_dim}] (z_dim {self._arch.z_dim})"
    width = tf.debugging.assert_equal(tf.shape(z)[-1], self._arch.z_dim, message=rule)
    with tf.control_dependencies([width]):
      z = tf.ensure_shape(z, [None, self._arch.z_dim])  # any other rank
      n, labels = self._checked(tf.shape(z)[0], labels, "the number of rows of z")
    with tf.control_dependencies([n]):
      return self._images(tf.identity(z), labels)

  def _png(self, seed, count, labels=None):
    uint8 = self._seeded(seed, count, labels)["images"]
    return {"png_bytes": tf.map_fn(tf.io.encode_png, uint8, fn_output_signature=tf.string)}


def versions(export_dir):
  """The integer versions under export_dir, ascending (other names, e.g. temporary folders, are not versions)."""
  if not os.path.isdir(export_dir):
    return []
  return sorted(int(n) for n in os.listdir(export_dir) if n.isdigit() and os.path.isdir(os.path.join(export_dir, n)))


def read_info(saved_model_dir):
  path = os.path.join(saved_model_dir, INFO)
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    return json.load(f)


def _check_truncation(truncation):
  if truncation is not None and not (isinstance(truncation, (int, float)) and 0 < truncation < math.inf):
    raise UserError(f"truncation must be a positive number (|z| bound) or none; got {truncation!r}")


def _one_checkpoint(model_dir, which):
  if str(which) == "every":
    raise UserError("checkpoint 'every' names several checkpoints; accepted: latest, best, a step number or a path")
  return checkpoints.find_checkpoints(model_dir, which)[0]


def export(model_dir, checkpoint="latest", ema=True, max_count=256, truncation=None, reuse=False):
  """Writes the next version <model_dir>/export/<n>/ from a checkpoint (`checkpoints.find_checkpoints`'s `which`).

  max_count bounds `count` (and the rows of z) per request; truncation (None or > 0) is applied to the latents of
  serving_default and png. With reuse, a newest version made from the same checkpoint and options is kept and
  nothing is written. Returns {"path", "version", "step", "checkpoint", "reused"}.
  """
  if isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1:
    raise UserError(f"max_count must be a positive integer; got {max_count!r}")
  _check_truncation(truncation)
  path = _one_checkpoint(model_dir, checkpoint)
  export_dir = os.path.join(model_dir, EXPORT)
  info = {"checkpoint": os.path.relpath(os.path.abspath(path), os.path.abspath(model_dir)), "ema": bool(ema),
          "max_count": max_count, "truncation": None if truncation is None else float(truncation)}
  existing = versions(export_dir)
  if reuse and existing:
    newest = os.path.join(export_dir, str(existing[-1]))
    old = read_info(newest)
    if {k: old.get(k) for k in info} == info:
      return {"path": newest, "version": existing[-1], "step": old.get("step"), "checkpoint": path, "reused": True}
  generator, arch, step = checkpoints.load_generator(model_dir, path, ema=ema)
  info.update(step=step, architecture=arch.to_dict(), signatures=list(SIGNATURES))
  version = (existing[-1] if existing else 0) + 1
  final = os.path.join(export_dir, str(version))
  tmp = os.path.join(export_dir, f".tmp-{version}-{os.getpid()}")
  module = ServingModule(generator, arch, max_count, info["truncation"])
  try:
    tf.saved_model.save(module, tmp, signatures={name: getattr(module, name) for name in SIGNATURES})
    os.makedirs(os.path.dirname(os.path.join(tmp, INFO)), exist_ok=True)
    with open(os.path.join(tmp, INFO), "w") as f:
      json.dump(info, f, indent=2, sort_keys=True)
    if os.path.exists(final):
      raise UserError(f"{final} appeared while exporting (another export?); run again for the next version")
    os.rename(tmp, final)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return {"path": final, "version": version, "step": step, "checkpoint": path, "reused": False}


def interpolate(a, b, steps, spherical=False):
  """Latent paths a -> b: a, b [R, D] -> [R, steps, D] at t = 0, 1/(steps-1), ..., 1.

  Linear: (1 - t) a + t b. Spherical (slerp): (sin((1 - t) w) a + sin(t w) b) / sin w, w the angle between a and b
  (linear where w is about 0); its points keep the norms of the endpoints, on the shell where N(0, I) puts its mass,
  where a linear path cuts through the low-density centre.
  """
  a, b = np.asarray(a, np.float64)[:, None, :], np.asarray(b, np.float64)[:, None, :]
  t = np.linspace(0.0, 1.0, steps)[None, :, None]
  linear = (1.0 - t) * a + t * b
  if not spherical:
    return linear.astype(np.float32)
  cos = np.sum(a * b, -1, keepdims=True) / (np.linalg.norm(a, axis=-1, keepdims=True) *
                                           np.linalg.norm(b, axis=-1, keepdims=True) + 1e-12)
  w = np.arccos(np.clip(cos, -1.0, 1.0))
  sin = np.sin(w)
  safe = np.where(sin < 1e-6, 1.0, sin)
  slerp = (np.sin((1.0 - t) * w) * a + np.sin(t * w) * b) / safe
  return np.where(sin < 1e-6, linear, slerp).astype(np.float32)


def run_of_export(path):
  """The run.json of the run an export belongs to (<model_dir>/export/<version>/ -> <model_dir>/run.json), or None."""
  run_json = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), "run.json")
  if os.path.exists(run_json):
    with open(run_json) as f:
      return json.load(f)
  return None


@dataclasses.dataclass
class FromZ:
  """The `from_z` signature of a loaded export: fn(z=[N, z_dim] float32[, labels=[N] int32]) -> dict of outputs."""
  fn: object
  z_dim: int
  num_classes: int
  path: str
  loaded: object  # keeps the SavedModel's variables alive


def load_from_z(saved_model, num_classes=None) -> FromZ:
  """Loads an export's `from_z` signature: `saved_model` is a version folder, or a folder of versions (the newest).

  The number of classes of a conditional export comes from `num_classes`, else its export.json, else the run.json
  of its run. Raises UserError for anything else, saying what is accepted.
  """
  path = saved_model
  if not os.path.exists(os.path.join(path, "saved_model.pb")) and versions(path):
    path = os.path.join(path, str(versions(path)[-1]))
  if not os.path.exists(os.path.join(path, "saved_model.pb")):
    raise UserError(f"saved_model {saved_model} is neither a SavedModel nor a folder of numbered versions of one; "
                    "tools/export.py makes them")
  try:
    loaded = tf.saved_model.load(path)
  except Exception as e:  # a corrupt folder fails in many ways
    raise UserError(f"saved_model {path} cannot be loaded ({type(e).__name__}); export it again with "
                    "tools/export.py") from None
  if "from_z" not in loaded.signatures:
    raise UserError(f"saved_model {path} has no 'from_z' signature (it has {sorted(loaded.signatures)}); export it "
                    "with tools/export.py")
  signature = loaded.signatures["from_z"]
  inputs = signature.structured_input_signature[1]
  if "z" not in inputs or inputs["z"].shape.rank != 2 or inputs["z"].shape[1] is None:
    raise UserError(f"saved_model {path}: its 'from_z' signature takes {sorted(inputs)}; accepted: z float32 "
                    "[N, z_dim] (and labels int32 [N])")
  if "labels" not in inputs:
    num_classes = 0
  elif not num_classes:
    run = run_of_export(path) or {}
    num_classes = (read_info(path).get("architecture") or run.get("architecture") or {}).get("num_classes")
    if not num_classes:
      raise UserError(f"saved_model {path} is conditional but its number of classes is unknown (no {INFO}, no "
                      "run.json two folders up): give --num_classes")
  return FromZ(signature, int(inputs["z"].shape[1]), num_classes, path, loaded)


class Source:
  """Images by z from a run's checkpoint or from an export: uint8 [N, H, W, C] for z [N, z_dim] (and labels [N])."""

  def __init__(self, describe, z_dim, num_classes, batch, fn):
    self.describe, self.z_dim, self.num_classes, self._batch, self._fn = describe, z_dim, num_classes, batch, fn

  def images(self, z, labels=None):
    out = []
    for i in range(0, len(z), self._batch):
      lab = None if labels is None else tf.constant(labels[i:i + self._batch], tf.int32)
      out.append(np.asarray(self._fn(tf.constant(z[i:i + self._batch], tf.float32), lab)))
    return np.concatenate(out)


def open_source(model_dir=None, checkpoint="latest", saved_model=None, ema=True) -> Source:
  """The generator of model_dir's checkpoint, or the `from_z` signature of a SavedModel (a version folder, or a
  folder of versions: the newest)."""
  if (model_dir is None) == (saved_model is None):
    raise UserError("give either a model_dir (with a checkpoint) or a saved_model, not both or neither")
  if model_dir is not None:
    path = _one_checkpoint(model_dir, checkpoint)
    generator, arch, step = checkpoints.load_generator(model_dir, path, ema=ema)
    fn = lambda z, labels: data.to_uint8(models.call_model(generator, arch, z, labels, training=False))  # noqa: E731
    return Source(f"{path} (step {step}{', EMA' if ema else ''})", arch.z_dim, arch.num_classes, 256, fn)
  model = load_from_z(saved_model)
  fn = lambda z, labels: model.fn(z=z, **({} if labels is None else {"labels": labels}))["images"]  # noqa: E731
  return Source(model.path, model.z_dim, model.num_classes, read_info(model.path).get("max_count", 64), fn)


MODES = ("samples", "linear", "spherical")


def sample_grid(source: Source, output, mode="samples", seed=0, rows=None, columns=8, truncation=None, classes=None):
  """Writes a PNG grid of rows x columns images from `source`; returns {"path", "rows", "columns", "source"}.

  samples: image (r, c) from z_c of latents(seed, ...); linear / spherical: row r goes from z_a to z_b across the
  columns. Conditional: row r has class classes[r % K] (classes default to all K), the rows of one cycle share their
  latents (a row per class, same z down a column); unconditional rows never share latents. rows default to K, or 8.
  """
  if mode not in MODES:
    raise UserError(f"unknown mode {mode!r}; accepted: {', '.join(MODES)}")
  _check_truncation(truncation)
  if source.num_classes:
    classes = list(range(source.num_classes)) if classes is None else list(classes)
    bad = [c for c in classes if not 0 <= c < source.num_classes]
    if bad or not classes:
      raise UserError(f"classes {bad or classes} are not class ids of this model; accepted: 0 to "
                      f"{source.num_classes - 1}")
  elif classes:
    raise UserError(f"classes {list(classes)} given, but the model is unconditional")
  cycle = len(classes) if source.num_classes else 1
  rows = rows if rows is not None else (cycle if source.num_classes else 8)
  least = 2 if mode != "samples" else 1
  for name, value, low in (("rows", rows, 1), ("columns", columns, least)):
    if not isinstance(value, int) or not low <= value <= 64:
      raise UserError(f"{name} must be an integer in [{low}, 64] for mode {mode}; got {value!r}")
  if not output.lower().endswith(".png"):
    raise UserError(f"output {output!r} must be a .png file")
  groups = -(-rows // cycle)  # latents shared by the rows of one cycle
  group = np.arange(rows) // cycle
  if mode == "samples":
    z = latents(seed, groups * columns, source.z_dim, truncation).numpy().reshape(groups, columns, -1)[group]
  else:
    ends = latents(seed, 2 * groups, source.z_dim, truncation).numpy()
    z = interpolate(ends[0::2], ends[1::2], columns, spherical=mode == "spherical")[group]
  labels = np.repeat([classes[r % cycle] for r in range(rows)], columns) if source.num_classes else None
  pictures = source.images(z.reshape(rows * columns, source.z_dim), labels)
  images.write_png(output, images.grid(pictures, rows=rows))
  return {"path": output, "rows": rows, "columns": columns, "source": source.describe}
