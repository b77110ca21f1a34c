"""The evaluation protocol on the embedded data: the classifier tool, domain FID, cached real statistics, evaluation
during training, and the exported-SavedModel path."""

import fcntl
import json
import os

import gin
import numpy as np
import pytest
import tensorflow as tf

from icr_tf import checkpoints, cli, data, loop, models
from icr_tf.errors import UserError
from icr_tf.eval import classifier, features, runner
from icr_tf.eval.evaluator import Evaluator
from tests.conftest import TINY_GIN
from tests.test_eval_features import fake_inception  # noqa: F401  (fixture)
from tests.test_tools import run_tool


@pytest.fixture(scope="session")
def small_classifier(tmp_path_factory, worker_id, fashion_mnist):
  """A classifier made by tools/train_classifier.py on 4096 images for 2 epochs, once per test run (shared by the
  workers under a file lock). The full one (60k images) is measured in WORKSPACE.md."""
  del fashion_mnist
  root = tmp_path_factory.getbasetemp()
  root = root if worker_id == "master" else root.parent
  path = root / "fmnist_cnn_small"
  with open(root / "fmnist_cnn_small.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not (path / features.CLASSIFIER_JSON).exists():
      result = run_tool("train_classifier.py", "--epochs=2", "--num_train=4096", f"--output_dir={path}")
      assert result.returncode == 0, result.stderr[-3000:]
      assert f"saved: {path} (test accuracy" in result.stdout
  return str(path)


def tiny_generator():
  gin.parse_config(TINY_GIN)
  arch = models.architecture()
  return models.build_generator(arch, name="generator_ema"), arch


def tiny_source():
  return data.DataSource(resize_method="resize", num_examples=256)


def test_classifier_tool_records_its_test_accuracy(small_classifier):
  with open(os.path.join(small_classifier, features.CLASSIFIER_JSON)) as f:
    info = json.load(f)
  assert info["train_examples"] == 4096 and info["epochs"] == 2 and info["test_examples"] == 10000
  assert info["input_shape"] == [32, 32, 1] and info["feature_dim"] == 128
  measured = classifier.accuracy(tf.saved_model.load(small_classifier))
  assert measured == pytest.approx(info["test_accuracy"], abs=1e-4)
  assert info["test_accuracy"] > 0.5  # 2 epochs of 4096 images; the full tool reaches >= 0.9 (WORKSPACE.md)


def test_domain_fid_train_vs_test_is_small_and_test_vs_noise_is_large(small_classifier, fashion_mnist, tmp_path):
  model_dir = tmp_path / "run"
  gin.parse_config("architecture.family = @SNDCGAN\narchitecture.resolution = 32\narchitecture.channels = 1")
  loop.RunDir(str(model_dir)).write_run(models.architecture(), fashion_mnist, {})
  kwargs = dict(extractor=features.classifier_extractor(small_classifier), num_samples=1000, num_real=1000,
                metrics=("fid",), cache_root=str(tmp_path / "cache"), print_fn=lambda _: None)
  fid = {}
  for kind in ("train", "noise", "test"):
    rows, _ = runner.evaluate_baseline(str(model_dir), kind, **kwargs)
    fid[kind] = rows[0]["fid1k_test_fmnist_cnn"]
  assert fid["test"] == pytest.approx(0.0, abs=1e-3)  # the same images
  assert fid["train"] < 0.05 * fid["noise"], fid
  with pytest.raises(UserError, match="unknown baseline 'celeba'; accepted: train, test, noise"):
    runner.evaluate_baseline(str(model_dir), "celeba", **kwargs)


def test_second_evaluation_reads_the_cached_statistics(small_classifier, fashion_mnist, tmp_path, monkeypatch):
  del fashion_mnist
  generator, arch = tiny_generator()
  kwargs = dict(extractor=features.classifier_extractor(small_classifier), num_samples=256, num_real=512,
                kernel_samples=128, cache_root=str(tmp_path), source=tiny_source(), print_fn=lambda _: None)
  first = Evaluator(**kwargs)
  results = first(generator, arch, 0)
  assert set(results) == {"fid256_test_fmnist_cnn", "kid128_test_fmnist_cnn", "kid128_test_fmnist_cnn_std",
                          "is256_fmnist_cnn", "is256_fmnist_cnn_std", "precision128_test_fmnist_cnn",
                          "recall128_test_fmnist_cnn", "density128_test_fmnist_cnn", "coverage128_test_fmnist_cnn"}
  assert first.best_metric == "fid256_test_fmnist_cnn" and all(np.isfinite(v) for v in results.values())
  (real_first,) = first._real.values()  # pylint: disable=protected-access
  assert not real_first.from_cache and os.path.exists(real_first.path)

  def no_real_images(*args, **kwargs):
    raise AssertionError("real images read again")

  monkeypatch.setattr(data, "eval_images", no_real_images)
  second = Evaluator(**kwargs)
  assert second(generator, arch, 0) == results
  (real_second,) = second._real.values()  # pylint: disable=protected-access
  assert real_second.from_cache and real_second.path == real_first.path
  with pytest.raises(AssertionError, match="real images read again"):  # another key: computed anew
    Evaluator(**{**kwargs, "num_real": 640})(generator, arch, 0)


def test_inception_path_end_to_end(fake_inception, fashion_mnist, tmp_path):  # noqa: F811
  """TF-GAN's Inception module signature (random weights): 16x16x1 samples and real images resized to 299x299x3."""
  del fashion_mnist
  generator, arch = tiny_generator()
  printed = []
  evaluator = Evaluator(extractor=features.inception_extractor(fake_inception), num_samples=2048, num_real=2048,
                        kernel_samples=256, batch_size=256, cache_root=str(tmp_path), source=tiny_source(),
                        print_fn=printed.append)
  results = evaluator(generator, arch, 0)
  assert evaluator.best_metric == "fid2048_test_inception_v3"
  assert set(results) >= {"fid2048_test_inception_v3", "kid256_test_inception_v3", "is2048_inception_v3",
                          "precision256_test_inception_v3", "coverage256_test_inception_v3"}
  assert results["fid2048_test_inception_v3"] > 0 and results["is2048_inception_v3"] >= 1.0
  assert "sampling 1024/2048" in printed and any(line.startswith("real statistics written to") for line in printed)
  assert all(np.isfinite(v) for v in results.values())


def test_sample_count_below_the_feature_dimension_is_refused(small_classifier):
  with pytest.raises(UserError, match="num_samples=100 is below the feature dimension 128 of fmnist_cnn"):
    Evaluator(extractor=features.classifier_extractor(small_classifier), num_samples=100)


def test_training_evaluates_with_the_gin_include(small_classifier, tiny_config, tmp_path):
  del tiny_config
  cli.parse_gin(["eval/fashion_mnist.gin"], [
      f"classifier_extractor.path = '{small_classifier}'", "Evaluator.num_samples = 256", "Evaluator.num_real = 512",
      "Evaluator.kernel_samples = 128", f"Evaluator.cache_root = '{tmp_path / 'cache'}'", "train.eval_every = 2"])
  model_dir = tmp_path / "run"
  loop.train(str(model_dir), num_steps=4, print_fn=lambda _: None)
  lines = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
  assert [line["step"] for line in lines] == [2, 4] and "fid256_test_fmnist_cnn" in lines[0]
  best = json.loads((model_dir / "best.json").read_text())
  assert best["metric"] == "fid256_test_fmnist_cnn"
  assert best["value"] == min(line["fid256_test_fmnist_cnn"] for line in lines)
  assert checkpoints.step_of(checkpoints.find_checkpoints(str(model_dir), "best")[0]) == best["step"]


class _Export(tf.Module):
  """The exported signature `from_z`: z [N, z_dim] -> {'images_float': [N, R, R, C]}; tracks G's variables."""

  def __init__(self, generator, arch):
    super().__init__()
    self.generator, self.generator_variables = generator, list(generator.variables)
    self.from_z = tf.function(lambda z: {"images_float": models.call_model(generator, arch, z, None, False)},
                              input_signature=[tf.TensorSpec([None, arch.z_dim], tf.float32, name="z")])


def test_saved_model_from_z_gives_the_numbers_of_its_generator(small_classifier, fashion_mnist, tmp_path):
  del fashion_mnist
  generator, arch = tiny_generator()
  export = _Export(generator, arch)
  path = tmp_path / "run" / "export" / "1"
  tf.saved_model.save(export, str(path), signatures={"from_z": export.from_z})
  loop.RunDir(str(tmp_path / "run")).write_run(arch, tiny_source(), {})
  gin.clear_config()  # the source must come from the run.json beside the export
  kwargs = dict(extractor=features.classifier_extractor(small_classifier), num_samples=256, num_real=512,
                kernel_samples=128, metrics=("fid", "kid", "is"), cache_root=str(tmp_path / "cache"),
                print_fn=lambda _: None)
  rows, _ = runner.evaluate_saved_model(str(path), **kwargs)
  direct = Evaluator(source=tiny_source(), **kwargs)(generator, arch, 0)
  assert rows[0]["checkpoint"] == str(path) and set(rows[0]) - {"step", "checkpoint"} == set(direct)
  for name, value in direct.items():
    assert rows[0][name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
  with pytest.raises(UserError, match="has no 'from_z' signature"):
    runner.saved_model_sampler(small_classifier)
