"""Measures train-step speed of variants against each other, in one process, as medians and ratios.

  python tools/benchmark.py --gin_file=fashion_mnist/common.gin --variant="baseline=" \
      --variant="icr=include 'regularizers/icr.gin'"

Each variant is `name=binding[;binding...]` on top of the gin files (the adversarial loss is always
@NonSaturating(): it barely changes the cost of a step). The variants run in rounds (A B A B ...) so that
a change in the machine's load hits all of them alike; each round times `--steps` steps after a warm-up call that
traces. Figures on a shared machine are noisy: read the ratios, not the absolute rates.
"""

import statistics
import time

from absl import app, flags

from icr_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin config files.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings common to every variant.")
flags.DEFINE_multi_string("variant", [], "name=binding[;binding...] (repeatable).")
flags.DEFINE_integer("steps", 20, "Steps timed per round.")
flags.DEFINE_integer("rounds", 5, "Rounds per variant.")
flags.DEFINE_string("strategy", "default", "Strategy name.")


def _build(variant_bindings):
  import gin  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from icr_tf import data, distribute, losses, models, regularizers  # pylint: disable=g-import-not-at-top
  from icr_tf.loop import build_state  # pylint: disable=g-import-not-at-top
  from icr_tf.train_step import TrainStep  # pylint: disable=g-import-not-at-top

  gin.clear_config()
  cli.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings + variant_bindings)
  strategy = distribute.make_strategy(FLAGS.strategy)
  arch = models.architecture()
  source = data.data_source()
  try:
    batch = gin.query_parameter("train.batch_size")
  except ValueError:  # not bound: train's default
    batch = 64
  loss = losses.NonSaturating()  # the loss barely changes the cost of a step
  state = build_state(strategy, arch)
  trainer = TrainStep(strategy, state, arch, loss, regularizers.consistency(), batch, seed=0)
  iterator = iter(data.distributed_train_dataset(strategy, source, arch.resolution, arch.channels, batch, 0, 0))
  del tf
  return trainer, iterator


def main(argv):
  del argv
  variants = []
  for spec in FLAGS.variant:
    name, _, bindings = spec.partition("=")
    variants.append((name, [b for b in bindings.split(";") if b]))
  if not variants:
    variants = [("default", [])]
  built = []
  for name, bindings in variants:
    trainer, iterator = _build(bindings)
    trainer(iterator, 2)  # trace and warm up
    built.append((name, trainer, iterator))
  times = {name: [] for name, _, _ in built}
  for r in range(FLAGS.rounds):
    for name, trainer, iterator in built:
      t0 = time.perf_counter()
      trainer(iterator, FLAGS.steps)
      times[name].append(FLAGS.steps / (time.perf_counter() - t0))
    print(f"round {r + 1}/{FLAGS.rounds}: " + ", ".join(f"{n} {times[n][-1]:.2f}" for n in times), flush=True)
  base = statistics.median(times[built[0][0]])
  print(f"{'variant':<16}{'median steps/s':>16}{'ratio to ' + built[0][0]:>20}")
  for name in times:
    med = statistics.median(times[name])
    print(f"{name:<16}{med:>16.3f}{med / base:>20.3f}")


if __name__ == "__main__":
  app.run(lambda argv: cli.run(main, argv))
