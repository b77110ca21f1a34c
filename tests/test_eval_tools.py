"""tools/eval.py end to end (every checkpoint of a run, with the classifier), and its answers to bad input (also on the
Inception path, with a module of its signature built here): one line on stderr, exit 2, nothing written."""

import json
import os
import shutil

import gin
import pytest

from icr_tf import loop
from tests.conftest import TINY_GIN
from tests.test_eval_evaluator import small_classifier  # noqa: F401  (fixture)
from tests.test_eval_features import fake_inception  # noqa: F401  (fixture)
from tests.test_tools import error_lines, run_tool, snapshot


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, fashion_mnist):
  """A tiny run of 4 steps with checkpoints at 2 and 4."""
  del fashion_mnist
  model_dir = str(tmp_path_factory.mktemp("eval_run") / "run")
  gin.clear_config()
  gin.parse_config(TINY_GIN)
  loop.train(model_dir, num_steps=4, print_fn=lambda _: None)
  gin.clear_config()
  return model_dir


def run_eval(cache, *args):
  env_cache = os.environ.get("ICR_TF_CACHE")
  os.environ["ICR_TF_CACHE"] = str(cache)
  try:
    return run_tool("eval.py", *args)
  finally:
    if env_cache is None:
      del os.environ["ICR_TF_CACHE"]
    else:
      os.environ["ICR_TF_CACHE"] = env_cache


SMALL = ["--num_samples=256", "--num_real=512", "--kernel_samples=128", "--batch_size=128"]


def test_eval_binary_every_checkpoint(tiny_run, small_classifier, tmp_path):  # noqa: F811
  out = tmp_path / "results.jsonl"
  result = run_eval(tmp_path / "cache", f"--model_dir={tiny_run}", "--checkpoint=every",
                    f"--extractor_path={small_classifier}", *SMALL, f"--output={out}")
  assert result.returncode == 0, result.stderr[-3000:]
  assert "sampling 128/256" in result.stdout and "sampling 256/256" in result.stdout
  assert "real statistics written to" in result.stdout and "peak RSS" in result.stdout
  table = result.stdout[result.stdout.index("metric "):].splitlines()
  assert table[0].split()[1:] == ["step", "2", "step", "4"]
  assert table[1].startswith("fid256_test_fmnist_cnn")
  rows = [json.loads(line) for line in out.read_text().splitlines()]
  assert [row["step"] for row in rows] == [2, 4] and all("coverage128_test_fmnist_cnn" in row for row in rows)


def _no_checkpoint(tiny_run, tmp_path, fake):
  model_dir = tmp_path / "empty_run"
  model_dir.mkdir()
  shutil.copy(os.path.join(tiny_run, "run.json"), model_dir / "run.json")
  return [f"--model_dir={model_dir}"], f"model_dir {model_dir} has no checkpoint yet"


def _missing_extractor(tiny_run, tmp_path, fake):
  return ([f"--model_dir={tiny_run}", "--extractor=inception", f"--extractor_path={tmp_path}/nope"],
          f"extractor path {tmp_path}/nope does not exist; accepted: a folder holding a SavedModel")


def _other_signature(tiny_run, tmp_path, fake):
  bad = tmp_path / "not_inception"
  shutil.copytree(fake, bad)
  return ([f"--model_dir={tiny_run}", "--extractor=classifier", f"--extractor_path={bad}"],
          f"extractor path {bad} has another signature")


def _too_few_samples(tiny_run, tmp_path, fake):
  return ([f"--model_dir={tiny_run}", "--extractor=inception", f"--extractor_path={fake}", "--num_samples=1000"],
          "num_samples=1000 is below the feature dimension 2048 of inception_v3: FID needs at least 2048 samples")


@pytest.mark.parametrize("case", [_no_checkpoint, _missing_extractor, _other_signature, _too_few_samples],
                         ids=lambda f: f.__name__[1:])
def test_bad_input_is_one_clear_line(tiny_run, fake_inception, tmp_path, case):  # noqa: F811
  args, message = case(tiny_run, tmp_path, fake_inception)
  before = snapshot(tiny_run)
  result = run_eval(tmp_path / "cache", *args)
  assert result.returncode == 2, result.stderr[-2000:]
  lines = error_lines(result)
  assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert snapshot(tiny_run) == before and not (tmp_path / "cache").exists()
