"""One GAN update under a tf.distribute strategy: n_dis D updates, then one G update; nothing else.

A step is a function of (state, step counter, batches): all randomness (z, labels of fakes, the augmentations T and
dz) is drawn statelessly from (seed, step), for the global batch, each replica keeping its rows. So the same seed and
global batch give the same losses on one device and on N replicas, and a resumed run continues the same stream.

D's loss (Alg. 1 and 2 of Zhao et al. 2020), averaged over the global batch:
  L_D = L_adv_D(D(x), D(G(z))) + lambda_real L_real + lambda_fake L_fake + lambda_dis L_dis
and G's:
  L_G = L_adv_G(D(G(z))) + lambda_gen L_gen
with the terms of `icr_tf.regularizers`. G runs in training mode throughout (batch statistics in its batch norms).
D sees the real, fake and augmented batches of a D update in one call over their concatenation (as compare_gan):
exact, since D has no batch-dependent layer, and one spectral-norm power iteration per D update. It was never slower
than one call per batch (WORKSPACE.md, "One D call or several").
"""

import gin
import numpy as np
import tensorflow as tf

from icr_tf import regularizers, summaries
from icr_tf.augment import BatchRandom
from icr_tf.errors import UserError
from icr_tf.models import call_model

_SUM = tf.distribute.ReduceOp.SUM


class NonFiniteError(UserError):
  """A loss, a regularization term, a gradient or a weight became NaN or Inf."""


def _dense(grads):
  # Gathers (class embeddings, conditional BN) give IndexedSlices whose row counts differ between replicas; the
  # all-reduce needs the same shape everywhere.
  return [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]


@gin.configurable(denylist=["strategy", "state", "arch", "loss", "consistency", "global_batch_size", "seed"])
class TrainStep:
  """Builds the replica step and the many-steps `tf.function` for one run.

  Args (gin-bindable ones marked *):
    strategy, state (a `state.GanState`), arch, loss (an `AdversarialLoss`), consistency (`regularizers.Consistency`),
    global_batch_size, seed: given by the loop.
    n_dis*: D updates per G update; each takes its own real batch.
    ema_decay*: decay of the exponential moving average of G's weights (state.generator_ema), which samples,
      evaluation and export use; with 0 the 'average' is a copy of G.
    ema_start_step*: before this step the EMA copies G's weights; after it the decay ramps up to ema_decay as
      min(ema_decay, (1 + t) / (10 + t)) with t the steps since ema_start_step.
    grad_norms*: log the global gradient norms of D and G; under N > 1 replicas this all-reduces the gradients once
      more for the norm (the optimizer all-reduces them again), so turn it off for speed on large models.
  """

  def __init__(self, strategy, state, arch, loss, consistency, global_batch_size, seed, n_dis=1, ema_decay=0.999,
               ema_start_step=0, grad_norms=True):
    if not isinstance(n_dis, int) or isinstance(n_dis, bool) or n_dis < 1:
      raise UserError(f"TrainStep.n_dis must be a positive integer; got {n_dis!r}")
    if not isinstance(ema_decay, (int, float)) or not 0.0 <= ema_decay < 1.0:
      raise UserError(f"TrainStep.ema_decay must be in [0, 1); got {ema_decay!r}")
    self.strategy = strategy
    self.state = state
    self.arch = arch
    self.loss = loss
    self.consistency = consistency
    self.global_batch_size = global_batch_size
    self.seed = tf.constant([seed, 0x1CE], tf.int64)
    self.n_dis = n_dis
    self.ema_decay = float(ema_decay)
    self.ema_start_step = ema_start_step
    self.grad_norms = grad_norms
    self.trace_count = 0
    self._train_fn = tf.function(self._train_loop)

  # ------------------------------------------------------------------ names of what a step reports
  def metric_names(self):
    c = self.consistency
    names = ["d_loss", "d_adv", "d_real", "d_fake", "g_loss", "g_adv"]
    names += [n for n, on in (("reg_real", c.lambda_real > 0), ("reg_fake", c.lambda_fake > 0),
                              ("reg_zcr_dis", c.lambda_dis > 0), ("reg_zcr_gen", c.lambda_gen > 0)) if on]
    if self.grad_norms:
      names += ["d_grad_norm", "g_grad_norm"]
    return names

  # ------------------------------------------------------------------ pieces of the replica step
  def _mean(self, per_example):
    """Sum over this replica's rows / global batch: SUM over replicas gives the global mean."""
    return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch_size)

  def _sample(self, rng):
    z = rng.normal([self.arch.z_dim])
    labels = rng.uniform_int(maxval=self.arch.num_classes) if self.arch.conditional else None
    return z, labels

  def _generate(self, z, labels):
    return call_model(self.state.generator, self.arch, z, labels, training=True)

  def _discriminate(self, groups):
    """groups: list of (images, labels). One D call over their concatenation; returns the logits [b] of each group."""
    if len(groups) == 1:
      return [call_model(self.state.discriminator, self.arch, groups[0][0], groups[0][1], training=True)]
    images = tf.concat([g[0] for g in groups], axis=0)
    labels = tf.concat([g[1] for g in groups], axis=0) if self.arch.conditional else None
    logits = call_model(self.state.discriminator, self.arch, images, labels, training=True)
    sizes = [g[0].shape[0] if g[0].shape[0] is not None else tf.shape(g[0])[0] for g in groups]
    return tf.split(logits, sizes, axis=0)

  def _grad_norm(self, grads):
    ctx = tf.distribute.get_replica_context()
    if self.strategy.num_replicas_in_sync > 1:
      grads = ctx.all_reduce(_SUM, grads)
    # Each replica reports norm / N so that the SUM over replicas gives the norm.
    return tf.linalg.global_norm(grads) / self.strategy.num_replicas_in_sync

  def _d_update(self, real, real_labels, rng):
    c = self.consistency
    z, fake_labels = self._sample(rng)
    fake = self._generate(z, fake_labels)
    groups = [(real, real_labels), (fake, fake_labels)]
    if c.lambda_real > 0:
      groups.append((c.augment(real, rng), real_labels))
    if c.lambda_fake > 0:
      groups.append((c.augment(fake, rng), fake_labels))
    if c.lambda_dis > 0:
      groups.append((self._generate(regularizers.perturb_latents(z, rng, c.sigma_noise), fake_labels), fake_labels))
    d_vars = self.state.discriminator.trainable_variables
    with tf.GradientTape() as tape:
      logits = self._discriminate(groups)
      real_logits, fake_logits, extra = logits[0], logits[1], list(logits[2:])
      adv = self.loss.d_loss(real_logits, fake_logits)
      total = adv
      terms = {}
      if c.lambda_real > 0:
        terms["reg_real"] = regularizers.real_consistency(real_logits, extra.pop(0))
        total += c.lambda_real * terms["reg_real"]
      if c.lambda_fake > 0:
        terms["reg_fake"] = regularizers.fake_consistency(fake_logits, extra.pop(0))
        total += c.lambda_fake * terms["reg_fake"]
      if c.lambda_dis > 0:
        terms["reg_zcr_dis"] = regularizers.zcr_discriminator(fake_logits, extra.pop(0))
        total += c.lambda_dis * terms["reg_zcr_dis"]
      d_loss = self._mean(total)
    grads = _dense(tape.gradient(d_loss, d_vars))
    metrics = {"d_loss": d_loss, "d_adv": self._mean(adv), "d_real": self._mean(real_logits),
               "d_fake": self._mean(fake_logits)}
    metrics.update({k: self._mean(v) for k, v in terms.items()})
    if self.grad_norms:
      metrics["d_grad_norm"] = self._grad_norm(grads)
    self.state.d_optimizer.apply_gradients(zip(grads, d_vars))
    return metrics

  def _g_update(self, rng):
    c = self.consistency
    z, labels = self._sample(rng)
    g_vars = self.state.generator.trainable_variables
    with tf.GradientTape() as tape:
      fake = self._generate(z, labels)
      (fake_logits,) = self._discriminate([(fake, labels)])
      adv = self.loss.g_loss(fake_logits)
      total = adv
      metrics = {}
      if c.lambda_gen > 0:
        fake_zaug = self._generate(regularizers.perturb_latents(z, rng, c.sigma_noise), labels)
        zcr = regularizers.zcr_generator(fake, fake_zaug)
        metrics["reg_zcr_gen"] = self._mean(zcr)
        total += c.lambda_gen * zcr
      g_loss = self._mean(total)
    grads = _dense(tape.gradient(g_loss, g_vars))
    metrics.update({"g_loss": g_loss, "g_adv": self._mean(adv)})
    if self.grad_norms:
      metrics["g_grad_norm"] = self._grad_norm(grads)
    self.state.g_optimizer.apply_gradients(zip(grads, g_vars))
    return metrics

  def replica_step(self, batches, step):
    """One G step (n_dis D updates, one G update) on this replica's rows. Returns its share of each metric."""
    ctx = tf.distribute.get_replica_context()
    local = self.global_batch_size // self.strategy.num_replicas_in_sync
    offset = ctx.replica_id_in_sync_group * local
    step_seed = tf.random.experimental.stateless_fold_in(self.seed, step)

    def rng(i):
      return BatchRandom(tf.random.experimental.stateless_fold_in(step_seed, i), self.global_batch_size, offset,
                         local)

    metrics = {}
    for i, (real, real_labels) in enumerate(batches):
      for k, v in self._d_update(real, real_labels, rng(i)).items():
        metrics[k] = metrics.get(k, 0.0) + v / self.n_dis
    metrics.update(self._g_update(rng(self.n_dis)))
    return metrics

  # ------------------------------------------------------------------ the cross-replica loop
  def _update_ema(self, step):
    # As tf.train.ExponentialMovingAverage with num_updates: the decay ramps up as min(decay, (1 + t) / (10 + t)),
    # t = steps since ema_start_step, so the average is not dominated by the initial weights early in a run.
    t = tf.cast(step - self.ema_start_step, tf.float32)
    decay = tf.where(t >= 0, tf.minimum(self.ema_decay, (1.0 + t) / (10.0 + t)), 0.0)
    for ema_var, var in zip(self.state.generator_ema.variables, self.state.generator.variables):
      ema_var.assign(decay * ema_var + (1.0 - decay) * var)

  def _train_loop(self, iterator, num_steps):
    """Runs up to num_steps steps; stops at the first step with a non-finite metric. Returns (sums of the metrics,
    steps run, the 1-based number of the bad step or -1, the metrics of the bad step)."""
    self.trace_count += 1  # Python side effect: runs once per trace.
    names = self.metric_names()
    totals = {name: tf.constant(0.0) for name in names}
    bad_metrics = {name: tf.constant(0.0) for name in names}
    bad_step = tf.constant(-1, tf.int64)
    done = tf.constant(0, tf.int32)
    for _ in tf.range(num_steps):
      batches = tuple(next(iterator) for _ in range(self.n_dis))
      step = self.state.step.read_value()
      per_replica = self.strategy.run(self.replica_step, args=(batches, step))
      self._update_ema(step)
      self.state.step.assign_add(1)
      self.state.examples_seen.assign_add(self.n_dis * self.global_batch_size)
      metrics = {k: self.strategy.reduce(_SUM, per_replica[k], axis=None) for k in names}
      totals = {k: totals[k] + metrics[k] for k in names}
      done += 1
      if not tf.reduce_all(tf.stack([tf.math.is_finite(metrics[k]) for k in names])):
        bad_step = step + 1
        bad_metrics = metrics
        break
    return totals, done, bad_step, bad_metrics

  def __call__(self, iterator, num_steps: int):
    """Runs `num_steps` G steps in one tf.function call; returns each metric's mean over them (floats).

    Raises NonFiniteError, naming the step and the terms, at the first step where a loss, a term or a gradient norm
    is NaN or Inf (the weights are then not to be trusted; nothing is saved by this call).
    """
    totals, done, bad_step, bad_metrics = self._train_fn(iterator, tf.constant(num_steps, tf.int32))
    if int(bad_step) >= 0:
      terms = [f"{summaries.scalar_name(k)}={float(v):.4g}" for k, v in bad_metrics.items()
               if not np.isfinite(float(v))]
      raise NonFiniteError(f"non-finite {', '.join(terms)} at step {int(bad_step)}")
    return {k: float(v) / int(done) for k, v in totals.items()}
