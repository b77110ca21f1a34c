"""Trains a GAN with (improved) consistency regularization.

  python tools/train.py --gin_file=gin/fashion_mnist/icr.gin --model_dir=runs/fmnist_icr
  python tools/train.py --gin_file=gin/cifar10/sndcgan_icr.gin --model_dir=runs/c10 --strategy=mirrored

Stopped runs resume from their latest checkpoint when started again with the same --model_dir.
"""

import sys

from absl import app, flags

from icr_tf import cli, distribute

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin config files (repeatable); relative paths are also looked up in gin/.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings (repeatable), e.g. 'train.batch_size = 32'.")
flags.DEFINE_string("model_dir", None, "Directory of the run: checkpoints, summaries, samples, config.")
flags.DEFINE_string("strategy", "default", f"One of: {', '.join(distribute.STRATEGIES)}.")
flags.DEFINE_integer("num_cpu_devices", 2, "Logical CPU devices for --strategy=mirrored on a machine without GPUs.")
flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
flags.DEFINE_integer("num_steps", None, "Overrides the gin file's train.num_steps.")
flags.DEFINE_bool("deterministic", False, "Turn on TensorFlow's op determinism: with the same seed, a run and a run "
                  "stopped and resumed give identical weights (slower).")
flags.mark_flag_as_required("model_dir")


def main(argv):
  del argv
  strategy = distribute.make_strategy(FLAGS.strategy, FLAGS.num_cpu_devices, FLAGS.tpu)
  if FLAGS.deterministic:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    tf.config.experimental.enable_op_determinism()
  from icr_tf import loop  # pylint: disable=g-import-not-at-top  (after the CPU split of make_strategy)
  cli.parse_gin(FLAGS.gin_file, FLAGS.gin_bindings)
  kwargs = {} if FLAGS.num_steps is None else {"num_steps": FLAGS.num_steps}
  result = loop.train(FLAGS.model_dir, strategy, **kwargs)
  if result["stopped_by"] is not None:
    print(f"stopped at step {result['step']} (checkpoint {result['checkpoint']}); run the same command to resume")
    print(f"samples: {result['samples']}")
    sys.exit(128 + result["stopped_by"])
  print(f"done: step {result['step']} in {result['model_dir']}")
  if result["samples"]:  # only the chief of a cluster writes them
    print(f"samples: {result['samples']}")


if __name__ == "__main__":
  app.run(lambda argv: cli.run(main, argv))
