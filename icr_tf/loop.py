"""The outer training loop: state, checkpoints, summaries, samples, progress. The update itself is `TrainStep`.

model_dir layout (see WORKSPACE.md):
  run.json                     the architecture and data of the run; a run of another architecture is refused
  operative_config.gin         the gin config in effect (operative_config.resume-<step>.gin for each resume)
  checkpoints/ckpt-<step>      step counter, examples seen, G, D, EMA of G, both optimizers (rolling, keep N)
  summaries/train/             TensorBoard events: every loss and term, logits, grad norms, learning rates,
                               steps/s, fixed-z sample grids, the config as text
  samples/step_<step>.png      fixed-z sample grids of the EMA generator
  metrics.jsonl, best.json, best/   evaluations, and the best checkpoint by the evaluator's metric (when enabled)
  .lock                        held by the running trainer: one trainer per model_dir
"""

import glob
import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time

import gin
import keras
import tensorflow as tf

from icr_tf import data, images, losses, models, regularizers, summaries
from icr_tf.errors import ConfigError, UserError
from icr_tf.lock import RunLock
from icr_tf.state import GanState, RunDir, build_state, generate, sample_inputs  # noqa: F401  (part of this API)
from icr_tf.train_step import NonFiniteError, TrainStep

import icr_tf.eval  # noqa: E402,F401  (registers the Evaluator and the feature extractors with gin)

gin.external_configurable(keras.optimizers.Adam, module="keras.optimizers")


def _format_duration(seconds):
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _learning_rate(optimizer):
  lr = optimizer.learning_rate
  return float(tf.convert_to_tensor(lr(optimizer.iterations) if callable(lr) else lr))


def _os_reason(message):
  """'{{function_node ...}} /path/file.tempstate123; No space left on device [Op:SaveV2]' -> 'No space left on
  device'."""
  message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message.splitlines()[0] if message else "")
  message = re.sub(r"\s*\[Op:\w+\]", "", message)
  return message.rsplit("; ", 1)[-1][:160]


class CheckpointWriteError(UserError):
  """A checkpoint could not be written (full disk, lost permissions, ...)."""


def is_chief(strategy) -> bool:
  """True on the one worker that writes checkpoints, summaries and samples (always true without a cluster)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  task_type = getattr(resolver, "task_type", None)
  if not task_type or task_type == "chief":
    return True
  has_chief = "chief" in resolver.cluster_spec().as_dict()
  return task_type == "worker" and resolver.task_id == 0 and not has_chief


@gin.configurable(denylist=["model_dir", "strategy", "print_fn"])
def train(model_dir, strategy=None, num_steps=gin.REQUIRED, batch_size=64, seed=0, loss=None, g_optimizer=None,
          d_optimizer=None, log_every=100, checkpoint_every=1000, sample_every=1000, keep_checkpoints=3,
          num_samples=64, eval_every=None, evaluator=None, print_fn=print):
  """Trains (or resumes) the run in `model_dir` to `num_steps` G steps. Returns a dict describing the result.

  Args (gin-bindable):
    num_steps:         the budget in G steps (n_dis D steps each)
    batch_size:        the global batch size (split over replicas)
    seed:              seed of the initial weights, the data order, z, labels of fakes, augmentations and dz
    loss:              the adversarial loss, e.g. @Hinge(); default @NonSaturating()
    g_optimizer/d_optimizer: optimizer factories, e.g. @G/keras.optimizers.Adam; default Adam(2e-4, 0.5, 0.999)
    log_every:         steps between console lines and scalar summaries
    checkpoint_every:  steps between checkpoints (and one at the end)
    sample_every:      steps between fixed-z sample grids (and one at the end)
    keep_checkpoints:  rolling checkpoints kept
    num_samples:       images in a sample grid
    eval_every:        steps between evaluations (and one at the end); None: no evaluation
    evaluator:         callable(generator, arch, step) -> {metric name: float}, with attribute `best_metric`: the
                       metric (lower is better) by which the best checkpoint is kept in <model_dir>/best

  Everything that can be checked is checked before anything is written. Then the trainer takes the model_dir's lock
  (one trainer per model_dir), restores the latest checkpoint if any, and trains. SIGINT / SIGTERM stop it after the
  current call, with a checkpoint (a second signal stops it at once); a non-finite loss, gradient or weight stops it
  without one, so the newest checkpoint is always finite.
  """
  strategy = strategy or tf.distribute.get_strategy()
  if (eval_every is None) != (evaluator is None):
    raise ConfigError("set both train.eval_every and train.evaluator, or neither")
  for name, value in (("num_steps", num_steps), ("batch_size", batch_size), ("log_every", log_every),
                      ("checkpoint_every", checkpoint_every), ("sample_every", sample_every),
                      ("eval_every", eval_every or 1), ("keep_checkpoints", keep_checkpoints),
                      ("num_samples", num_samples)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ConfigError(f"train.{name} must be a positive integer; got {value!r}")
  if batch_size % strategy.num_replicas_in_sync:
    raise ConfigError(f"train.batch_size={batch_size} is not divisible by the {strategy.num_replicas_in_sync} "
                      "replicas of the strategy")
  loss = loss or losses.NonSaturating()
  if not isinstance(loss, losses.AdversarialLoss):
    raise ConfigError(f"train.loss must be an adversarial loss such as @Hinge(); got {loss!r}")
  arch = models.architecture()
  source = data.data_source()
  info = data.dataset_info(source)
  if arch.conditional and arch.num_classes != info.num_classes:
    raise ConfigError(f"architecture.num_classes={arch.num_classes} but {source.name} has {info.num_classes} classes")
  consistency = regularizers.consistency()
  run_dir = RunDir(model_dir)
  run_dir.check_architecture(arch)
  chief = is_chief(strategy)
  run_lock = RunLock(model_dir).acquire() if chief else None
  try:
    if run_lock is not None and run_lock.stale_holder:
      print_fn(f"taking over the lock left by a trainer that is gone: {run_lock.stale_holder}")
    session = _Session(run_dir, strategy, arch, source, info, loss, consistency, chief, print_fn,
                       dict(num_steps=num_steps, batch_size=batch_size, seed=seed, g_optimizer=g_optimizer,
                            d_optimizer=d_optimizer, log_every=log_every, checkpoint_every=checkpoint_every,
                            sample_every=sample_every, keep_checkpoints=keep_checkpoints, num_samples=num_samples,
                            eval_every=eval_every, evaluator=evaluator))
    return session.run()
  finally:
    if run_lock is not None:
      run_lock.release()


class _Session:
  """One training session of a run: from its latest checkpoint to the budget (or a stop)."""

  def __init__(self, run_dir, strategy, arch, source, info, loss, consistency, chief, print_fn, cfg):
    self.run_dir, self.strategy, self.arch, self.source, self.info = run_dir, strategy, arch, source, info
    self.loss, self.consistency, self.chief, self.print_fn, self.cfg = loss, consistency, chief, print_fn, cfg
    self.state = build_state(strategy, arch, cfg["g_optimizer"], cfg["d_optimizer"], cfg["seed"])
    self.manager = self._restore()
    self.start_step = int(self.state.step.numpy())
    self.stop_signal = None
    self._old_handlers = {}

  def _restore(self):
    # Only the chief writes into model_dir; other workers save (a collective operation) into a scratch folder.
    directory = self.run_dir.checkpoints if self.chief else tempfile.mkdtemp(prefix="icr_tf_worker_ckpt_")
    if self.chief:
      for leftover in glob.glob(os.path.join(directory, "*_temp*")):  # a save cut short by a kill
        shutil.rmtree(leftover, ignore_errors=True)
    manager = tf.train.CheckpointManager(self.state.checkpoint(), directory, max_to_keep=self.cfg["keep_checkpoints"],
                                         step_counter=self.state.step)
    latest = tf.train.latest_checkpoint(self.run_dir.checkpoints)
    if latest:
      optimizers = {"G": self.state.g_optimizer, "D": self.state.d_optimizer}
      configured = {k: opt.learning_rate.numpy() for k, opt in optimizers.items()
                    if not isinstance(opt._learning_rate, keras.optimizers.schedules.LearningRateSchedule)}  # pylint: disable=protected-access
      try:
        self.state.checkpoint().restore(latest).assert_existing_objects_matched()
      except (ValueError, AssertionError, tf.errors.OpError) as e:
        raise ConfigError(f"the checkpoint {latest} does not fit this architecture "
                          f"({str(e).splitlines()[0][:200]}); choose another --model_dir") from None
      for k, lr in configured.items():  # the checkpoint holds the learning rate too; the config in effect wins
        if optimizers[k].learning_rate.numpy() != lr:
          self.print_fn(f"{k} learning rate: {optimizers[k].learning_rate.numpy():g} in the checkpoint, {lr:g} in "
                        "the config: using the config")
          optimizers[k].learning_rate = lr
    return manager

  # ------------------------------------------------------------------ writes
  def _save_checkpoint(self, step):
    bad = [m.name for m in (self.state.generator, self.state.discriminator, self.state.generator_ema)
           if not all(bool(tf.reduce_all(tf.math.is_finite(v))) for v in m.variables)]
    if bad:
      raise NonFiniteError(f"the weights of {', '.join(bad)} became non-finite by step {step}; training stopped "
                           f"without a checkpoint; the newest checkpoint is {self.manager.latest_checkpoint}")
    try:
      return self.manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as e:
      for leftover in glob.glob(os.path.join(self.manager.directory, f"ckpt-{step}*_temp*")):
        shutil.rmtree(leftover, ignore_errors=True)
      reason = _os_reason(getattr(e, "message", None) or str(e))
      raise CheckpointWriteError(f"cannot write the checkpoint of step {step} in {self.manager.directory} "
                                 f"({reason}); the newest complete checkpoint is {self.manager.latest_checkpoint}: "
                                 "free space, then run again to resume from it") from None

  def _write_samples(self, step, writer, sample_z, sample_labels):
    arch, num = self.arch, self.cfg["num_samples"]
    grid = images.grid(data.to_uint8(generate(self.state.generator_ema, arch, sample_z, sample_labels)).numpy(),
                       rows=arch.num_classes if arch.conditional and arch.num_classes <= num else None)
    path = images.write_png(os.path.join(self.run_dir.samples, f"step_{step:07d}.png"), grid)
    with writer.as_default(step=step):
      tf.summary.image("samples/generator_ema", grid[None], max_outputs=1)
    return path

  def _log(self, step, metrics, rate, writer):
    num_steps = self.cfg["num_steps"]
    with writer.as_default(step=step):
      for k, v in metrics.items():
        tf.summary.scalar(summaries.scalar_name(k), v)
      tf.summary.scalar("optimizer/g_learning_rate", _learning_rate(self.state.g_optimizer))
      tf.summary.scalar("optimizer/d_learning_rate", _learning_rate(self.state.d_optimizer))
      if math.isfinite(rate):
        tf.summary.scalar("perf/steps_per_sec", rate)
    speed = f"{rate:.2f} steps/s | ETA {_format_duration((num_steps - step) / rate)}" if rate > 0 else "warming up"
    shown = " ".join(f"{k} {metrics[k]:.4g}" for k in ("d_loss", "g_loss", "d_real", "d_fake") if k in metrics)
    self.print_fn(f"step {step}/{num_steps} ({100.0 * step / num_steps:.1f}%) | {speed} | {shown}")

  # ------------------------------------------------------------------ signals
  def _on_signal(self, signum, frame):
    del frame
    self.stop_signal = signum
    for sig, handler in self._old_handlers.items():  # a second signal acts at once
      signal.signal(sig, handler)
    self.print_fn(f"{signal.Signals(signum).name}: stopping after the current steps, with a checkpoint")

  def _install_signal_handlers(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGINT, signal.SIGTERM):
        self._old_handlers[sig] = signal.signal(sig, self._on_signal)

  def _restore_signal_handlers(self):
    for sig, handler in self._old_handlers.items():
      signal.signal(sig, handler)

  # ------------------------------------------------------------------ the loop
  def run(self):
    cfg, arch, state = self.cfg, self.arch, self.state
    num_steps, start_step = cfg["num_steps"], self.start_step
    if self.chief:
      self.run_dir.write_run(arch, self.source, {"loss": self.loss.name, "consistency": self.consistency.name,
                                                 "batch_size": cfg["batch_size"]})
    trainer = TrainStep(self.strategy, state, arch, self.loss, self.consistency, cfg["batch_size"], cfg["seed"])
    dataset = data.distributed_train_dataset(self.strategy, self.source, arch.resolution, arch.channels,
                                             cfg["batch_size"], cfg["seed"], int(state.examples_seen.numpy()))
    iterator = iter(dataset)
    writer = (summaries.open_writer(self.run_dir.summaries, start_step) if self.chief
              else tf.summary.create_noop_writer())
    sample_z, sample_labels = sample_inputs(arch, cfg["num_samples"])
    evals = (_Evals(self.run_dir, state, arch, cfg["evaluator"], writer, self.print_fn, start_step)
             if cfg["evaluator"] and self.chief else None)
    everies = [cfg["log_every"], cfg["checkpoint_every"], cfg["sample_every"]] + [e for e in [cfg["eval_every"]] if e]

    self.print_fn(f"training {arch.family.name} ({self.consistency.name}, {self.loss.name}) on {self.source.name}:"
                  f"{self.source.split} [{self.info.num_examples} images] in {self.run_dir.root}: step {start_step} "
                  f"-> {num_steps}, batch {cfg['batch_size']}, {self.strategy.num_replicas_in_sync} replica(s)")
    step, sample_path, metrics, saved_step = start_step, None, {}, start_step
    rate, first = float("nan"), True
    self._install_signal_handlers()
    try:
      while step < num_steps and self.stop_signal is None:
        n = min([num_steps] + [(step // every + 1) * every for every in everies]) - step
        t0 = time.perf_counter()
        try:
          metrics = trainer(iterator, n)
        except NonFiniteError as e:
          raise NonFiniteError(f"{e}; training stopped without a checkpoint; the newest checkpoint is "
                               f"{self.manager.latest_checkpoint or '(none)'}; lower the learning rate or check "
                               "the data") from None
        elapsed = time.perf_counter() - t0
        step += n
        if not first:  # the first call includes tracing
          rate = n / elapsed if math.isnan(rate) else 0.7 * rate + 0.3 * n / elapsed
        if first and self.chief:
          _write_config(self.run_dir, writer, start_step)
        first = False
        if step % cfg["log_every"] == 0 or step == num_steps:
          self._log(step, metrics, rate, writer)
        if self.chief and (step % cfg["sample_every"] == 0 or step == num_steps):
          sample_path = self._write_samples(step, writer, sample_z, sample_labels)
        if step % cfg["checkpoint_every"] == 0 or step == num_steps:
          self._save_checkpoint(step)
          saved_step = step
        if evals and (step % cfg["eval_every"] == 0 or step == num_steps):
          evals.evaluate(step)
      if self.stop_signal is not None and saved_step != step:
        self._save_checkpoint(step)
    finally:
      self._restore_signal_handlers()
      writer.flush()
      if not self.chief:
        shutil.rmtree(self.manager.directory, ignore_errors=True)
    if sample_path is None and self.chief:  # the budget was already reached, or a stop came first
      sample_path = self._write_samples(step, writer, sample_z, sample_labels)
    return {"step": step, "samples": sample_path, "metrics": metrics, "model_dir": self.run_dir.root,
            "checkpoint": self.manager.latest_checkpoint, "stopped_by": self.stop_signal}


class _Evals:
  """Runs the evaluator; writes eval/* summaries and <model_dir>/metrics.jsonl; keeps the best checkpoint apart."""

  def __init__(self, run_dir, state, arch, evaluator, writer, print_fn, start_step):
    self.run_dir, self.state, self.arch, self.evaluator = run_dir, state, arch, evaluator
    self.writer, self.print_fn = writer, print_fn
    self.metric = evaluator.best_metric
    self.jsonl = os.path.join(run_dir.root, "metrics.jsonl")
    self.best_json = os.path.join(run_dir.root, "best.json")
    self.best_manager = tf.train.CheckpointManager(state.checkpoint(), os.path.join(run_dir.root, "best"),
                                                   max_to_keep=1)
    self.best = None
    if os.path.exists(self.best_json):
      with open(self.best_json) as f:
        best = json.load(f)
      if best.get("step", 0) <= start_step:
        self.best = best
    self._drop_lines_after(start_step)

  def _drop_lines_after(self, step):
    """A resumed run re-evaluates the steps after its checkpoint: their old lines go, so no step appears twice."""
    if not os.path.exists(self.jsonl):
      return
    with open(self.jsonl) as f:
      lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with open(self.jsonl + ".tmp", "w") as f:
      f.writelines(lines)
    os.replace(self.jsonl + ".tmp", self.jsonl)

  def evaluate(self, step):
    results = {k: float(v) for k, v in self.evaluator(self.state.generator_ema, self.arch, step).items()}
    with self.writer.as_default(step=step):
      for k, v in results.items():
        tf.summary.scalar(f"eval/{k}", v)
    with open(self.jsonl, "a") as f:
      f.write(json.dumps({"step": step, **results}, sort_keys=True) + "\n")
    value = results.get(self.metric)
    is_best = value is not None and math.isfinite(value) and (self.best is None or value < self.best["value"])
    if is_best:
      self.best_manager.save(checkpoint_number=step)
      self.best = {"metric": self.metric, "value": value, "step": step}
      with open(self.best_json + ".tmp", "w") as f:
        json.dump(self.best, f, indent=2)
      os.replace(self.best_json + ".tmp", self.best_json)
    shown = " ".join(f"{k} {v:.4g}" for k, v in results.items())
    self.print_fn(f"eval at step {step}: {shown}{' (best so far)' if is_best else ''}")
    return results


def _write_config(run_dir, writer, start_step):
  """Writes the operative gin config (what was really used) to model_dir and to TensorBoard."""
  config = gin.operative_config_str()
  name = "operative_config.gin" if start_step == 0 else f"operative_config.resume-{start_step}.gin"
  with open(os.path.join(run_dir.root, name), "w") as f:
    f.write(config)
  with writer.as_default(step=start_step):
    tf.summary.text("config/operative_gin", "\n".join("    " + line for line in config.splitlines()))
