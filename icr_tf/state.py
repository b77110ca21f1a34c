"""The state of a run (what a checkpoint holds), the paths of its model_dir, and sampling from its generator."""

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from icr_tf import models
from icr_tf.errors import ConfigError


@dataclasses.dataclass
class GanState:
  """Everything a checkpoint holds."""
  generator: keras.Model
  discriminator: keras.Model
  generator_ema: keras.Model
  g_optimizer: keras.optimizers.Optimizer
  d_optimizer: keras.optimizers.Optimizer
  step: tf.Variable  # G steps done
  examples_seen: tf.Variable  # real examples read by the whole run: the data position

  def checkpoint(self) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(step=self.step, examples_seen=self.examples_seen, generator=self.generator,
                               discriminator=self.discriminator, generator_ema=self.generator_ema,
                               g_optimizer=self.g_optimizer, d_optimizer=self.d_optimizer)


def _default_optimizer():
  return keras.optimizers.Adam(learning_rate=2e-4, beta_1=0.5, beta_2=0.999)


def build_state(strategy, arch, g_optimizer=None, d_optimizer=None, seed=0) -> GanState:
  """Builds models, EMA copy and optimizers inside `strategy.scope()`; optimizers are built before the first step.

  The initial weights are a function of `seed` (it seeds Keras' global random state, as keras.utils.set_random_seed).
  """
  keras.utils.set_random_seed(seed)
  with strategy.scope():
    generator = models.build_generator(arch)
    discriminator = models.build_discriminator(arch)
    generator_ema = models.build_generator(arch, name="generator_ema")
    generator_ema.set_weights(generator.get_weights())
    g_opt = (g_optimizer or _default_optimizer)()
    d_opt = (d_optimizer or _default_optimizer)()
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    agg = tf.VariableAggregation.ONLY_FIRST_REPLICA
    step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step", aggregation=agg)
    seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="examples_seen", aggregation=agg)
  return GanState(generator, discriminator, generator_ema, g_opt, d_opt, step, seen)


@dataclasses.dataclass(frozen=True)
class RunDir:
  """The paths of a model_dir."""
  root: str

  @property
  def checkpoints(self):
    return os.path.join(self.root, "checkpoints")

  @property
  def summaries(self):
    return os.path.join(self.root, "summaries", "train")

  @property
  def samples(self):
    return os.path.join(self.root, "samples")

  @property
  def run_json(self):
    return os.path.join(self.root, "run.json")

  def read_run(self):
    if not os.path.exists(self.run_json):
      return None
    with open(self.run_json) as f:
      return json.load(f)

  def check_architecture(self, arch) -> None:
    """Refuses a model_dir that holds a run of another architecture (before anything is written)."""
    run = self.read_run()
    if run is None:
      if tf.train.latest_checkpoint(self.checkpoints):
        raise ConfigError(f"model_dir {self.root} holds checkpoints but no run.json; use another --model_dir")
      return
    theirs = run.get("architecture", {})
    ours = arch.to_dict()
    if theirs != ours:
      diff = ", ".join(f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in ours if theirs.get(k) != ours[k])
      raise ConfigError(f"model_dir {self.root} holds a run of another architecture ({diff}); choose another "
                        "--model_dir or the config of that run")

  def write_run(self, arch, source, extra):
    os.makedirs(self.root, exist_ok=True)
    run = {"architecture": arch.to_dict(), "data": dataclasses.asdict(source), **extra}
    tmp = self.run_json + ".tmp"
    with open(tmp, "w") as f:
      json.dump(run, f, indent=2, sort_keys=True)
    os.replace(tmp, self.run_json)


def sample_inputs(arch, count, seed=1234):
  """Fixed z [count, z_dim] (and labels: class i % num_classes) for sample grids."""
  z = tf.random.stateless_normal([count, arch.z_dim], seed=[seed, 0])
  labels = tf.range(count, dtype=tf.int32) % arch.num_classes if arch.conditional else None
  return z, labels


def generate(generator, arch, z, labels, batch_size=256):
  """G(z) in inference mode, in batches: float [N, R, R, C] in [-1, 1] as numpy."""
  out = []
  for start in range(0, int(z.shape[0]), batch_size):
    lab = None if labels is None else labels[start:start + batch_size]
    out.append(models.call_model(generator, arch, z[start:start + batch_size], lab, training=False).numpy())
  return np.concatenate(out, axis=0)
