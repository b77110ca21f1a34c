"""Writes a PNG grid of samples or latent interpolations, from a run's checkpoint or from an exported SavedModel.

  python tools/sample.py --model_dir=runs/fashion_mnist_icr --output=samples.png --seed=3
  python tools/sample.py --saved_model=runs/fashion_mnist_icr/export --mode=spherical --output=slerp.png

The same --seed gives the same latents from either source. A conditional model gets a row per class (--classes to
choose them), the rows sharing their latents; --mode=linear or spherical interpolates across each row.
"""

from absl import app, flags

from icr_tf import cli
from icr_tf.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A run, to sample from its checkpoint (or give --saved_model).")
flags.DEFINE_string("checkpoint", "latest", "With --model_dir: latest, best, a step number or a checkpoint path.")
flags.DEFINE_bool("ema", True, "With --model_dir: the EMA generator (--noema: the raw one).")
flags.DEFINE_string("saved_model", None, "An export: a version folder, or <model_dir>/export for the newest.")
flags.DEFINE_string("output", None, "The PNG file to write.")
flags.DEFINE_string("mode", "samples", "samples, linear or spherical (interpolation across each row).")
flags.DEFINE_integer("seed", 0, "Seed of the latents.")
flags.DEFINE_integer("rows", None, "Rows of the grid; default: one per class, or 8.")
flags.DEFINE_integer("columns", 8, "Columns of the grid (interpolation steps).")
flags.DEFINE_float("truncation", None, "Truncation of the latents: each z_i in [-t, t]; unset: none.")
flags.DEFINE_list("classes", None, "A conditional model's classes, a row each (comma-separated ids); default all.")
flags.mark_flag_as_required("output")


def main(argv):
  del argv
  from icr_tf import export  # pylint: disable=g-import-not-at-top  (after cli: TensorFlow imported quietly)
  classes = FLAGS.classes
  if classes is not None:
    if not all(c.strip().isdigit() for c in classes):
      raise UserError(f"--classes={','.join(classes)} must be class ids (non-negative integers, comma-separated)")
    classes = [int(c) for c in classes]
  source = export.open_source(FLAGS.model_dir, FLAGS.checkpoint, FLAGS.saved_model, ema=FLAGS.ema)
  result = export.sample_grid(source, FLAGS.output, FLAGS.mode, FLAGS.seed, FLAGS.rows, FLAGS.columns,
                              FLAGS.truncation, classes)
  print(f"{FLAGS.mode}: {result['path']} ({result['rows']}x{result['columns']} from {result['source']})")


if __name__ == "__main__":
  app.run(lambda argv: cli.run(main, argv))
