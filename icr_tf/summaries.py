"""TensorBoard writers that stay readable across resumes.

A run killed at step K after its last checkpoint at step C < K already wrote summaries for steps C+1..K; resumed at
C, it writes them again. TensorBoard treats the first SessionLog.START event of a log directory as the start of the
run and every later one, of step s, as a restart: it drops the events with a step >= s read before it. So each
session of a run writes a START event of step (start step + 1) in a file named to sort after the older event files
and just before its own writer's file: TensorBoard (its plugin_event_accumulator) then shows each step once, from the
session that continued.
"""

import glob
import os
import time

import tensorflow as tf
from tensorboard.compat.proto import event_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

SCALAR_NAMES = {
    "d_loss": "losses/d_total", "d_adv": "losses/d_adversarial", "g_loss": "losses/g_total",
    "g_adv": "losses/g_adversarial", "reg_real": "regularizers/real_consistency",
    "reg_fake": "regularizers/fake_consistency", "reg_zcr_dis": "regularizers/zcr_discriminator",
    "reg_zcr_gen": "regularizers/zcr_generator", "d_real": "logits/d_real", "d_fake": "logits/d_fake",
    "d_grad_norm": "grad_norm/discriminator", "g_grad_norm": "grad_norm/generator",
}


def scalar_name(metric):
  """The TensorBoard tag of a train-step metric."""
  return SCALAR_NAMES.get(metric, metric)


def open_writer(logdir, start_step):
  """A tf.summary writer for `logdir`, preceded by a SessionLog.START event of step start_step + 1."""
  os.makedirs(logdir, exist_ok=True)
  before = set(glob.glob(os.path.join(logdir, "*tfevents*")))
  writer = tf.summary.create_file_writer(logdir)
  writer.flush()
  new = sorted(set(glob.glob(os.path.join(logdir, "*tfevents*"))) - before)
  if new:
    _write_start_event(new[-1], start_step + 1)
  return writer


def _write_start_event(new_events_file, step):
  """Writes a SessionLog.START event of `step` to a file that sorts just before `new_events_file`."""
  base, _, _ = new_events_file.rpartition(".")  # '...<pid>.<n>.v2' -> '...<pid>.<n>'; '.purge' < '.v2'
  path = base + ".purge"
  now = time.time()
  version = event_pb2.Event(wall_time=now, file_version="brain.Event:2")  # START is read as such only after this
  start = event_pb2.Event(wall_time=now, step=step, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START))
  with open(path + ".tmp", "wb") as f:
    writer = RecordWriter(f)
    writer.write(version.SerializeToString())
    writer.write(start.SerializeToString())
    writer.flush()
  os.replace(path + ".tmp", path)
