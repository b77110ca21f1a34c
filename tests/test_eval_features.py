"""Feature extractors: the Inception path end to end on a module of TF-Hub's signature built here (random weights),
and one clear error for an extractor path that is missing or of another signature."""

import os

import numpy as np
import pytest
import tensorflow as tf

from icr_tf.errors import UserError
from icr_tf.eval import features


class FakeInception(tf.Module):
  """The signature of TF-GAN's Inception-v3 TF-Hub module: float images [N, 299, 299, 3] in [-1, 1] ->
  {'pool_3': [N, 2048], 'logits': [N, 1008]}; here a pooling and two random dense layers."""

  def __init__(self, pool_dim=2048, seed=0):
    super().__init__()
    rng = np.random.default_rng(seed)
    self.w1 = tf.Variable((rng.normal(size=(192, pool_dim)) / np.sqrt(192)).astype(np.float32))
    self.w2 = tf.Variable((rng.normal(size=(pool_dim, 1008)) / np.sqrt(pool_dim)).astype(np.float32))

  @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
  def __call__(self, images):
    pooled = tf.reshape(tf.nn.avg_pool2d(images, 37, 37, "VALID"), [-1, 192])  # 299 // 37 = 8 -> 8*8*3
    pool_3 = tf.nn.relu(tf.matmul(pooled, self.w1))
    return {"pool_3": pool_3, "logits": tf.matmul(pool_3, self.w2)}


class OtherSignature(tf.Module):
  @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
  def __call__(self, images):
    return {"embedding": tf.reduce_mean(images, axis=[1, 2])}


def save_fake_inception(path, **kwargs):
  tf.saved_model.save(FakeInception(**kwargs), str(path))
  return str(path)


@pytest.fixture(scope="module")
def fake_inception(tmp_path_factory):
  return save_fake_inception(tmp_path_factory.mktemp("inception") / "module")


def test_inception_extractor_resizes_to_299_rgb_and_flattens(fake_inception):
  extractor = features.inception_extractor(fake_inception)
  assert (extractor.name, extractor.feature_dim, extractor.num_logits) == ("inception_v3", 2048, 1008)
  rng = np.random.default_rng(0)
  gray = rng.uniform(-1, 1, size=(3, 32, 32, 1)).astype(np.float32)
  feats, logits = extractor(gray)
  assert feats.shape == (3, 2048) and logits.shape == (3, 1008)
  module = tf.saved_model.load(fake_inception)
  by_hand = module(tf.image.resize(tf.tile(gray, [1, 1, 1, 3]), [299, 299], method="bilinear"))
  np.testing.assert_allclose(feats.numpy(), by_hand["pool_3"].numpy(), rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(logits.numpy(), by_hand["logits"].numpy(), rtol=1e-5, atol=1e-4)
  assert len(extractor.fingerprint) == 16 and extractor.fingerprint == features.fingerprint(fake_inception)


def test_fingerprint_follows_the_weights(tmp_path):
  a = save_fake_inception(tmp_path / "a", seed=0)
  b = save_fake_inception(tmp_path / "b", seed=1)
  assert features.fingerprint(a) != features.fingerprint(b)


def test_bad_extractor_paths_are_one_clear_error(tmp_path):
  with pytest.raises(UserError, match=r"extractor path .*/nope does not exist; accepted: a folder holding a "
                                      r"SavedModel callable on float32 images \[N, 299, 299, 3\]"):
    features.inception_extractor(str(tmp_path / "nope"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(UserError, match="holds no SavedModel"):
    features.inception_extractor(str(tmp_path / "empty"))
  tf.saved_model.save(OtherSignature(), str(tmp_path / "other"))
  with pytest.raises(UserError, match=r"has another signature \(KeyError.*'embedding'.*accepted: .*'pool_3'"):
    features.inception_extractor(str(tmp_path / "other"))
  small = save_fake_inception(tmp_path / "small", pool_dim=64)
  with pytest.raises(UserError, match="gives pool_3 of dimension 64"):
    features.inception_extractor(small)
  with pytest.raises(UserError, match="no Inception module given"):
    features.inception_extractor(None)


def test_the_classifier_is_refused_on_other_data(tmp_path):
  spec = features.ExtractorSpec("fmnist_cnn", 299, 3, "pool_3", "logits", None, ("fashion_mnist_local",))
  extractor = features.Extractor(spec, save_fake_inception(tmp_path / "m"))
  extractor.check_domain("fashion_mnist_local")
  with pytest.raises(UserError, match="cannot judge 'cifar10'; use the Inception extractor"):
    extractor.check_domain("cifar10")


def test_missing_classifier_names_the_tool(tmp_path):
  missing = str(tmp_path / "clf")
  with pytest.raises(UserError, match=f"no Fashion-MNIST classifier in {missing}: train it first with "
                                      f"`.venv/bin/python tools/train_classifier.py --output_dir={missing}`"):
    features.classifier_extractor(missing)
  assert not os.path.exists(missing)
