"""Evaluates a run's generator: FID, KID, IS, precision/recall, density/coverage, printed as a table.

  .venv/bin/python tools/eval.py --model_dir=runs/fashion_mnist_icr                      # latest checkpoint
  .venv/bin/python tools/eval.py --model_dir=runs/fashion_mnist_icr --checkpoint=every   # every checkpoint kept
  .venv/bin/python tools/eval.py --model_dir=runs/c10 --checkpoint=best --extractor=inception \
      --extractor_path=/data/tfgan_inception --split=train --num_samples=50000
  .venv/bin/python tools/eval.py --saved_model=runs/fashion_mnist_icr/export/1
  .venv/bin/python tools/eval.py --model_dir=runs/fashion_mnist_icr --baseline=train   # real train images instead

Flags set the gin parameters of `Evaluator` (and of the chosen extractor); --gin_file / --gin_bindings can set the
same (e.g. gin/eval/cifar10_inception.gin). Real statistics are cached in $ICR_TF_CACHE (default ~/.cache/icr_tf).
"""

import json
import resource

from absl import app, flags

from icr_tf import cli
from icr_tf.errors import UserError

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A training run to evaluate (give this or --saved_model).")
flags.DEFINE_string("checkpoint", "latest", "latest, best, every, a step number, or a checkpoint path.")
flags.DEFINE_string("saved_model", None, "An exported SavedModel (with a from_z signature) to evaluate.")
flags.DEFINE_string("baseline", None, "Instead of the generator, evaluate real images of a split (train, test) or "
                    "uniform noise (noise), as the run of --model_dir sees them: the floor and ceiling of the numbers.")
flags.DEFINE_integer("num_classes", None, "Classes of a conditional SavedModel that has no run.json two folders up.")
flags.DEFINE_string("extractor", None, "classifier (the Fashion-MNIST classifier; the default) or inception.")
flags.DEFINE_string("extractor_path", None, "Folder (or TF-Hub handle) of the extractor's SavedModel.")
flags.DEFINE_string("split", None, "Real split compared with (default test).")
flags.DEFINE_integer("num_samples", None, "Generated samples (default 10000).")
flags.DEFINE_integer("num_real", None, "Real images of the split (default: all).")
flags.DEFINE_integer("kernel_samples", None, "Samples per set for KID, precision/recall, density/coverage.")
flags.DEFINE_list("metrics", None, "Any of fid, kid, is, pr, dc (default all).")
flags.DEFINE_integer("batch_size", None, "Images per generator / extractor call (default 250).")
flags.DEFINE_integer("seed", None, "Seed of the generated z (default 0).")
flags.DEFINE_string("output", None, "Also write the results as JSON lines to this file.")
flags.DEFINE_multi_string("gin_file", [], "Gin config files (repeatable); also looked up in gin/.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings (repeatable), e.g. 'Evaluator.num_samples = 2048'.")

EXTRACTORS = {"classifier": "classifier_extractor", "inception": "inception_extractor"}


def flag_bindings():
  """The flags that were given, as gin bindings (applied after --gin_file and --gin_bindings)."""
  bindings = []
  if FLAGS.extractor is not None:
    if FLAGS.extractor not in EXTRACTORS:
      raise UserError(f"unknown --extractor={FLAGS.extractor!r}; accepted: {', '.join(EXTRACTORS)}")
    bindings.append(f"Evaluator.extractor = @{EXTRACTORS[FLAGS.extractor]}()")
  if FLAGS.extractor_path is not None:
    bindings += [f"{fn}.path = {FLAGS.extractor_path!r}" for fn in EXTRACTORS.values()]
  for name in ("split", "num_samples", "num_real", "kernel_samples", "batch_size", "seed"):
    if getattr(FLAGS, name) is not None:
      bindings.append(f"Evaluator.{name} = {getattr(FLAGS, name)!r}")
  if FLAGS.metrics is not None:
    bindings.append(f"Evaluator.metrics = {tuple(FLAGS.metrics)!r}")
  return bindings


def main(argv):
  del argv
  # pylint: disable=g-import-not-at-top
  from icr_tf import loop  # noqa: F401  (registers train.*, so that the eval includes of gin/eval/ parse here too)
  from icr_tf.eval import runner  # registers Evaluator and the extractors
  if (FLAGS.model_dir is None) == (FLAGS.saved_model is None):
    raise UserError("give one of --model_dir or --saved_model")
  cli.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings + flag_bindings())
  if FLAGS.baseline and not FLAGS.model_dir:
    raise UserError("--baseline needs --model_dir (the run whose data and resolution it stands in for)")
  if FLAGS.baseline:
    rows, evaluator = runner.evaluate_baseline(FLAGS.model_dir, FLAGS.baseline)
  elif FLAGS.model_dir:
    rows, evaluator = runner.evaluate_checkpoints(FLAGS.model_dir, FLAGS.checkpoint)
  else:
    rows, evaluator = runner.evaluate_saved_model(FLAGS.saved_model, FLAGS.num_classes)
  names = list(evaluator.names.values())
  print(f"extractor {evaluator.extractor.name} ({evaluator.extractor.path}, fingerprint "
        f"{evaluator.extractor.fingerprint})")
  print(runner.format_table(rows, names))
  print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
  if FLAGS.output:
    with open(FLAGS.output, "a") as f:
      for row in rows:
        f.write(json.dumps(row, sort_keys=True) + "\n")


if __name__ == "__main__":
  app.run(lambda argv: cli.run(main, argv))
