"""The Fashion-MNIST domain classifier: a small CNN whose penultimate layer is the offline FID feature space.

It reads the embedded data as the default run sees it (28x28 padded to 32x32x1, float in [-1, 1]), is trained with
Adam on Fashion-MNIST train, and is saved as a SavedModel whose call maps images [N, 32, 32, 1] to
{'features': [N, 128] (ReLU of the penultimate dense layer), 'logits': [N, 10]}, with `classifier.json` beside it
(its Fashion-MNIST test accuracy and how it was made). The folder is written to a temporary sibling and renamed, so a
failed run leaves the previous classifier in place.
"""

import json
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from icr_tf import data
from icr_tf.errors import UserError
from icr_tf.eval import features as features_lib

RESOLUTION, CHANNELS, NUM_CLASSES, FEATURE_DIM = 32, 1, 10, 128


def build_classifier(feature_dim=FEATURE_DIM, num_classes=NUM_CLASSES, seed=0) -> keras.Model:
  """images [B, 32, 32, 1] -> [features [B, feature_dim], logits [B, num_classes]]."""
  keras.utils.set_random_seed(seed)
  inputs = keras.Input((RESOLUTION, RESOLUTION, CHANNELS), name="images")
  x = inputs
  for i, width in enumerate((32, 64, 128)):
    x = keras.layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(2)(x)
  x = keras.layers.Flatten()(x)
  feats = keras.layers.Dense(feature_dim, activation="relu", name="features")(x)
  logits = keras.layers.Dense(num_classes, name="logits")(keras.layers.Dropout(0.3)(feats))
  return keras.Model(inputs, [feats, logits], name="fmnist_cnn")


class _Servable(tf.Module):
  """The saved module: `module(images) -> {'features', 'logits'}`; tracks the variables itself (see STACK.md)."""

  def __init__(self, model):
    super().__init__()
    self.model = model
    self.model_variables = list(model.variables)

  @tf.function(input_signature=[tf.TensorSpec([None, RESOLUTION, RESOLUTION, CHANNELS], tf.float32)])
  def __call__(self, images):
    feats, logits = self.model(images, training=False)
    return {"features": feats, "logits": logits}


def _dataset(split, count=None):
  source = data.DataSource().with_split(split, num_examples=count)
  return data.load_examples(source, RESOLUTION, CHANNELS).cache(), data.dataset_info(source).num_examples


def accuracy(module, split="test", count=None, batch_size=500) -> float:
  """Top-1 accuracy of a saved (or in-memory) classifier module on the first `count` images of a split."""
  ds, _ = _dataset(split, count)
  correct = total = 0
  for images, labels in ds.batch(batch_size):
    logits = module(data.to_float(images))["logits"]
    correct += int(tf.reduce_sum(tf.cast(tf.argmax(logits, axis=1, output_type=tf.int32) == labels, tf.int32)))
    total += int(labels.shape[0])
  return correct / total


def train_classifier(output_dir=features_lib.CLASSIFIER_DIR, epochs=4, batch_size=128, num_train=None, seed=0,
                     learning_rate=2e-3, print_fn=print) -> dict:
  """Trains the classifier on Fashion-MNIST train (the first `num_train` images, or all 60k), measures its accuracy
  on the 10k test images, saves it to `output_dir` (replacing what was there only when done). Returns the info
  written to classifier.json."""
  if not isinstance(epochs, int) or epochs < 1:
    raise UserError(f"epochs must be a positive integer; got {epochs!r}")
  if num_train is not None and (not isinstance(num_train, int) or num_train < batch_size):
    raise UserError(f"num_train must be an integer of at least one batch ({batch_size}); got {num_train!r}")
  start = time.time()
  train, count = _dataset("train", num_train)
  steps_per_epoch = count // batch_size
  ds = (train.shuffle(count, seed=seed).batch(batch_size, drop_remainder=True)
        .map(lambda x, y: (data.to_float(x), y)).prefetch(tf.data.AUTOTUNE))
  model = build_classifier(seed=seed)
  schedule = keras.optimizers.schedules.CosineDecay(learning_rate, epochs * steps_per_epoch)
  optimizer = keras.optimizers.Adam(schedule)
  loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

  @tf.function
  def step(images, labels):
    with tf.GradientTape() as tape:
      _, logits = model(images, training=True)
      loss = loss_fn(labels, logits)
    optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
    return loss

  print_fn(f"training the Fashion-MNIST classifier on {count} images: {epochs} epochs of {steps_per_epoch} steps")
  for epoch in range(epochs):
    losses = [float(step(images, labels)) for images, labels in ds]
    print_fn(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f} ({time.time() - start:.0f}s)")
  servable = _Servable(model)
  test_accuracy = accuracy(servable)
  info = {"dataset": data.EMBEDDED, "test_accuracy": round(test_accuracy, 4), "test_examples": 10000,
          "train_examples": count, "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
          "seed": seed, "input_shape": [RESOLUTION, RESOLUTION, CHANNELS], "feature_dim": FEATURE_DIM,
          "num_classes": NUM_CLASSES, "train_seconds": round(time.time() - start, 1)}
  print_fn(f"test accuracy {test_accuracy:.4f}")
  _save(servable, info, output_dir)
  return info


def _save(servable, info, output_dir):
  output_dir = os.path.abspath(output_dir)
  parent = os.path.dirname(output_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = output_dir + f".tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  tf.saved_model.save(servable, tmp, signatures={"serving_default": servable.__call__})
  with open(os.path.join(tmp, features_lib.CLASSIFIER_JSON), "w") as f:
    json.dump(info, f, indent=2, sort_keys=True)
  old = output_dir + f".old-{os.getpid()}"
  if os.path.exists(output_dir):
    os.replace(output_dir, old)
  os.replace(tmp, output_dir)
  shutil.rmtree(old, ignore_errors=True)
