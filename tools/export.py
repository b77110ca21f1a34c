"""Exports a run's generator as a SavedModel for TF Serving: <model_dir>/export/<next version>/.

  python tools/export.py --model_dir=runs/fashion_mnist_icr
  python tools/export.py --model_dir=runs/c10 --checkpoint=best --truncation=1.0 --max_count=64

Signatures: serving_default (seed, count [, labels] -> images uint8), from_z (z [, labels] -> images,
images_float), png (seed, count [, labels] -> png_bytes). See icr_tf/export.py.
"""

from absl import app, flags

from icr_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Directory of the run to export.")
flags.DEFINE_string("checkpoint", "latest", "latest, best, a step number or a checkpoint path.")
flags.DEFINE_bool("ema", True, "Export the EMA generator (--noema: the raw one).")
flags.DEFINE_integer("max_count", 256, "Most images per request; larger requests are refused.")
flags.DEFINE_float("truncation", None, "Truncation of the seeded latents: each z_i in [-t, t]; unset: none.")
flags.DEFINE_bool("reuse_existing", False, "If the newest version came from the same checkpoint and options, "
                  "print its path and write nothing.")
flags.mark_flag_as_required("model_dir")


def main(argv):
  del argv
  from icr_tf import export  # pylint: disable=g-import-not-at-top  (after cli: TensorFlow imported quietly)
  result = export.export(FLAGS.model_dir, FLAGS.checkpoint, ema=FLAGS.ema, max_count=FLAGS.max_count,
                         truncation=FLAGS.truncation, reuse=FLAGS.reuse_existing)
  note = " (already exported from this checkpoint)" if result["reused"] else ""
  print(f"export: {result['path']}{note}")
  print(f"from: {result['checkpoint']} (step {result['step']}); signatures: {', '.join(export.SIGNATURES)}")


if __name__ == "__main__":
  app.run(lambda argv: cli.run(main, argv))
