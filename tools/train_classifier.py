"""Trains the Fashion-MNIST classifier whose features give the offline FID (saved to the project's known place).

  .venv/bin/python tools/train_classifier.py                       # -> runs/classifiers/fashion_mnist_cnn
  .venv/bin/python tools/train_classifier.py --epochs=1 --num_train=4096 --output_dir=/tmp/clf   # a quick one

The SavedModel maps images [N, 32, 32, 1] in [-1, 1] to {'features': [N, 128], 'logits': [N, 10]}; its test
accuracy is written to classifier.json beside it.
"""

from absl import app, flags

from icr_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", None, "Where to save the classifier (default: icr_tf.eval.CLASSIFIER_DIR).")
flags.DEFINE_integer("epochs", 4, "Epochs over the training images.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("num_train", None, "Train on the first N training images only (default: all 60000).")
flags.DEFINE_integer("seed", 0, "Seed of the initial weights and the data order.")


def main(argv):
  del argv
  from icr_tf.eval import classifier, features  # pylint: disable=g-import-not-at-top
  output_dir = FLAGS.output_dir or features.CLASSIFIER_DIR
  info = classifier.train_classifier(output_dir, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                                     num_train=FLAGS.num_train, seed=FLAGS.seed)
  print(f"saved: {output_dir} (test accuracy {info['test_accuracy']:.4f})")


if __name__ == "__main__":
  app.run(lambda argv: cli.run(main, argv))
