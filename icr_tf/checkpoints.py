"""Finding and loading a run's checkpoints: the latest, the best by an eval metric, or one chosen by step or path.

Rolling checkpoints live in <model_dir>/checkpoints/ckpt-<step>; the best one by the run's eval metric (lower is
better, e.g. FID) is kept apart in <model_dir>/best/ckpt-<step>, with best.json saying which metric and value.
Loading a generator needs no gin config: the architecture is read from <model_dir>/run.json.
"""

import json
import os
import re

import tensorflow as tf

from icr_tf import models
from icr_tf.errors import UserError

CHECKPOINTS = "checkpoints"
BEST = "best"
WHICH = ("latest", "best", "every")


def run_info(model_dir) -> dict:
  """The run.json of a model_dir; UserError if there is none."""
  path = os.path.join(model_dir, "run.json")
  if not os.path.isdir(model_dir):
    raise UserError(f"model_dir {model_dir} does not exist")
  if not os.path.exists(path):
    raise UserError(f"model_dir {model_dir} holds no run (no run.json); train into it first with tools/train.py")
  with open(path) as f:
    return json.load(f)


def architecture_of(model_dir) -> models.Architecture:
  return models.architecture_from_dict(run_info(model_dir)["architecture"])


def step_of(path) -> int:
  match = re.search(r"ckpt-(\d+)$", path)
  return int(match.group(1)) if match else -1


def all_checkpoints(model_dir):
  """The rolling checkpoints still on disk, oldest first."""
  directory = os.path.join(model_dir, CHECKPOINTS)
  state = tf.train.get_checkpoint_state(directory)
  # The state file holds paths relative to its folder; get_checkpoint_state joins them to `directory` already.
  paths = [p if os.path.isabs(p) or p.startswith(directory) else os.path.join(directory, p)
           for p in (state.all_model_checkpoint_paths if state else [])]
  return sorted((p for p in paths if tf.io.gfile.exists(p + ".index")), key=step_of)


def find_checkpoints(model_dir, which="latest"):
  """Checkpoint paths for `which`: 'latest', 'best', 'every', a step number, or a checkpoint path prefix."""
  run_info(model_dir)
  which = str(which)
  if which == "latest":
    path = tf.train.latest_checkpoint(os.path.join(model_dir, CHECKPOINTS))
    if not path:
      raise UserError(f"model_dir {model_dir} has no checkpoint yet; train it first (tools/train.py)")
    return [path]
  if which == "best":
    path = tf.train.latest_checkpoint(os.path.join(model_dir, BEST))
    if not path:
      raise UserError(f"model_dir {model_dir} has no best checkpoint: the run kept none (set train.eval_every and "
                      "train.evaluator to keep the best by FID); use --checkpoint=latest")
    return [path]
  if which == "every":
    paths = all_checkpoints(model_dir)
    if not paths:
      raise UserError(f"model_dir {model_dir} has no checkpoint yet; train it first (tools/train.py)")
    return paths
  if which.isdigit():
    for path in all_checkpoints(model_dir) + find_checkpoints_safe(model_dir, "best"):
      if step_of(path) == int(which):
        return [path]
    steps = [step_of(p) for p in all_checkpoints(model_dir)]
    raise UserError(f"model_dir {model_dir} has no checkpoint of step {which}; it has steps {steps}")
  if tf.io.gfile.exists(which + ".index"):
    return [which]
  raise UserError(f"unknown checkpoint {which!r}; accepted: latest, best, every, a step number or a checkpoint path")


def find_checkpoints_safe(model_dir, which):
  try:
    return find_checkpoints(model_dir, which)
  except UserError:
    return []


def load_generator(model_dir, checkpoint_path, ema=True):
  """Builds the run's generator and restores it (the EMA weights by default). Returns (generator, arch, step)."""
  arch = architecture_of(model_dir)
  generator = models.build_generator(arch, name="generator_ema" if ema else "generator")
  ckpt = tf.train.Checkpoint(**{"generator_ema" if ema else "generator": generator})
  try:
    ckpt.restore(checkpoint_path).expect_partial().assert_existing_objects_matched()
  except (ValueError, AssertionError, tf.errors.OpError) as e:
    raise UserError(f"checkpoint {checkpoint_path} does not hold this run's generator "
                    f"({str(e).splitlines()[0][:160]})") from None
  return generator, arch, step_of(checkpoint_path)
