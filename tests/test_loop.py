"""The outer loop: resume, checkpoints, summaries read back from event files, operative config, refusals."""

import glob
import os

import gin
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator as event_accumulator

from icr_tf import loop
from icr_tf.errors import ConfigError


def _train(model_dir, num_steps, **kwargs):
  return loop.train(str(model_dir), num_steps=num_steps, print_fn=lambda *_: None, **kwargs)


def _tags(model_dir):
  acc = event_accumulator.EventAccumulator(str(model_dir / "summaries" / "train"), size_guidance={"tensors": 0})
  acc.Reload()
  return acc


def test_train_writes_checkpoints_summaries_samples_and_config(tiny_config, tmp_path):
  gin.parse_config("consistency.lambda_real = 10.\nconsistency.lambda_fake = 10.\n"
                   "consistency.lambda_dis = 5.\nconsistency.lambda_gen = 0.5")
  result = _train(tmp_path, 4)
  assert result["step"] == 4
  assert os.path.basename(result["checkpoint"]) == "ckpt-4"
  assert sorted(os.path.basename(p) for p in glob.glob(str(tmp_path / "samples" / "*.png"))) == [
      "step_0000002.png", "step_0000004.png"]
  config = (tmp_path / "operative_config.gin").read_text()
  assert "consistency.lambda_gen = 0.5" in config and "architecture.resolution = 16" in config
  acc = _tags(tmp_path)
  tags = set(acc.Tags()["tensors"])
  for tag in ("losses/d_total", "losses/d_adversarial", "losses/g_total", "losses/g_adversarial",
              "regularizers/real_consistency", "regularizers/fake_consistency", "regularizers/zcr_discriminator",
              "regularizers/zcr_generator", "logits/d_real", "logits/d_fake", "grad_norm/discriminator",
              "grad_norm/generator", "optimizer/g_learning_rate", "optimizer/d_learning_rate", "perf/steps_per_sec",
              "samples/generator_ema", "config/operative_gin"):
    assert tag in tags, tag
  steps = [e.step for e in acc.Tensors("losses/d_total")]
  assert steps == [2, 4]
  lr = tf.make_ndarray(acc.Tensors("optimizer/d_learning_rate")[0].tensor_proto)
  assert float(lr) == pytest.approx(2e-4)


def test_resume_matches_one_go(tiny_config, tmp_path):
  one_go, split = tmp_path / "one_go", tmp_path / "split"
  _train(one_go, 6)
  _train(split, 4)
  gin.clear_config()
  gin.parse_config(tiny_config)
  result = _train(split, 6)
  assert result["step"] == 6
  states = []
  for model_dir in (one_go, split):
    reader = tf.train.load_checkpoint(str(model_dir / "checkpoints"))
    states.append({name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(model_dir / "checkpoints"))
                   if "OPTIMIZER_SLOT" not in name})
  assert states[0].keys() == states[1].keys()
  assert states[0]["step/.ATTRIBUTES/VARIABLE_VALUE"] == states[1]["step/.ATTRIBUTES/VARIABLE_VALUE"] == 6
  for opt in ("g_optimizer", "d_optimizer"):
    key = f"{opt}/_iterations/.ATTRIBUTES/VARIABLE_VALUE"
    assert states[0][key] == states[1][key] == 6
  assert states[0]["examples_seen/.ATTRIBUTES/VARIABLE_VALUE"] == 6 * 8
  assert os.path.exists(split / "operative_config.resume-4.gin")
  # Same data position, same randomness: the weights agree up to float non-associativity of threaded kernels.
  for name in states[0]:
    if "generator/" in name or "discriminator/" in name:
      np.testing.assert_allclose(states[0][name], states[1][name], rtol=1e-3, atol=1e-4, err_msg=name)


def test_another_architecture_is_refused_and_nothing_is_overwritten(tiny_config, tmp_path):
  _train(tmp_path, 2)
  before = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / "**"), recursive=True) if os.path.isfile(p)}
  gin.parse_config("architecture.d_width = 8")
  with pytest.raises(ConfigError, match=r"another architecture \(d_width: 4 there, 8 here\)"):
    _train(tmp_path, 4)
  after = {p: os.path.getmtime(p) for p in glob.glob(str(tmp_path / "**"), recursive=True) if os.path.isfile(p)}
  assert before == after


def test_budget_already_reached_trains_nothing(tiny_config, tmp_path):
  _train(tmp_path, 2)
  result = _train(tmp_path, 2)
  assert result["step"] == 2 and os.path.exists(result["samples"])


@pytest.mark.parametrize("binding,message", [("train.batch_size = 0", "batch_size must be a positive integer"),
                                             ("architecture.num_classes = 3", "has 10 classes")])
def test_bad_train_config(tiny_config, tmp_path, binding, message):
  gin.parse_config(binding)
  with pytest.raises(ConfigError, match=message):
    _train(tmp_path, 2)
  assert not os.path.exists(tmp_path / "run.json")


class _FakeEvaluator:
  """Scores that fall, then rise: the best checkpoint must stay at the minimum."""
  best_metric = "score"

  def __init__(self):
    self.calls = []

  def __call__(self, generator, arch, step):
    self.calls.append(step)
    return {"score": {2: 5.0, 4: 3.0, 6: 4.0}[step], "other": float(step)}


def test_eval_hook_writes_jsonl_and_keeps_the_best_checkpoint(tiny_config, tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  from icr_tf import checkpoints  # pylint: disable=g-import-not-at-top
  evaluator = _FakeEvaluator()
  _train(tmp_path, 6, eval_every=2, evaluator=evaluator)
  assert evaluator.calls == [2, 4, 6]
  lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [2, 4, 6] and lines[1]["score"] == 3.0
  assert json.loads((tmp_path / "best.json").read_text()) == {"metric": "score", "value": 3.0, "step": 4}
  assert checkpoints.step_of(checkpoints.find_checkpoints(str(tmp_path), "best")[0]) == 4
  assert checkpoints.step_of(checkpoints.find_checkpoints(str(tmp_path), "latest")[0]) == 6
  assert "eval/score" in set(_tags(tmp_path).Tags()["tensors"])
  generator, arch, step = checkpoints.load_generator(str(tmp_path), checkpoints.find_checkpoints(str(tmp_path),
                                                                                                  "best")[0])
  assert step == 4 and arch.resolution == 16 and generator.output_shape == (None, 16, 16, 1)


def test_checkpoint_lookup_errors(tiny_config, tmp_path):
  from icr_tf import checkpoints  # pylint: disable=g-import-not-at-top
  from icr_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match="holds no run"):
    checkpoints.find_checkpoints(str(tmp_path), "latest")
  _train(tmp_path, 2)
  with pytest.raises(UserError, match="no best checkpoint"):
    checkpoints.find_checkpoints(str(tmp_path), "best")
  with pytest.raises(UserError, match=r"no checkpoint of step 7; it has steps \[2\]"):
    checkpoints.find_checkpoints(str(tmp_path), "7")
  with pytest.raises(UserError, match="unknown checkpoint 'newest'"):
    checkpoints.find_checkpoints(str(tmp_path), "newest")
  assert checkpoints.find_checkpoints(str(tmp_path), "2") == checkpoints.find_checkpoints(str(tmp_path), "every")
  relative = os.path.relpath(tmp_path)  # the state file's paths must not be joined to the folder twice
  assert [checkpoints.step_of(p) for p in checkpoints.find_checkpoints(relative, "every")] == [2]
  assert os.path.exists(checkpoints.find_checkpoints(relative, "2")[0] + ".index")
