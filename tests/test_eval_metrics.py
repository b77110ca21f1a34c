"""The metrics against numpy/scipy references and point clouds with known answers; the streamed statistics."""

import numpy as np
import pytest
import scipy.linalg
from scipy.special import softmax

from icr_tf.errors import UserError
from icr_tf.eval import metrics, stats


def _fid_reference(a, b):
  mu1, mu2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  covmean = scipy.linalg.sqrtm(s1 @ s2).real
  return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _kid_reference(a, b, block):
  """Unbiased MMD^2 with k(x, y) = (x.y/D + 1)^3, averaged over TF-GAN's blocks (n//nb, the last ones one more)."""
  n, d = a.shape
  nb = int(np.ceil(max(len(a), len(b)) / block))

  def cuts(m):
    sizes = [m // nb] * (nb - m % nb) + [m // nb + 1] * (m % nb)
    return np.concatenate([[0], np.cumsum(sizes)])

  ca, cb = cuts(len(a)), cuts(len(b))
  ests = []
  for i in range(nb):
    x, y = a[ca[i]:ca[i + 1]], b[cb[i]:cb[i + 1]]
    kxx, kyy, kxy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
    m, k = len(x), len(y)
    ests.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (k * (k - 1)) -
                2 * kxy.mean())
  ests = np.array(ests)
  return ests.mean(), np.sqrt(ests.var(ddof=1) / nb)


@pytest.fixture
def clouds():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(600, 32)) @ rng.normal(size=(32, 32)) * 0.3 + 1.0
  b = rng.normal(size=(500, 32)) * 0.8 + rng.normal(size=32) * 0.5
  return a, b


def test_fid_matches_scipy(clouds):
  a, b = clouds
  want = _fid_reference(a, b)
  assert metrics.frechet_distance(a, b) == pytest.approx(want, rel=1e-3)
  assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_fid_from_streamed_moments_matches_scipy(clouds):
  a, b = clouds
  sa, sb = stats.FeatureStats(32, len(a), keep=100), stats.FeatureStats(32, len(b), keep=100)
  for start in range(0, len(a), 77):  # uneven batches
    sa.add(a[start:start + 77])
  for start in range(0, len(b), 128):
    sb.add(b[start:start + 128])
  np.testing.assert_allclose(sa.moments.mean, a.mean(0), rtol=1e-6, atol=1e-5)
  np.testing.assert_allclose(sa.moments.covariance(), np.cov(a.astype(np.float32), rowvar=False), rtol=1e-5,
                             atol=1e-5)
  assert sa.kept.shape == (100, 32) and np.allclose(sa.kept, a[:100], atol=1e-6)
  fid = metrics.frechet_distance_from_moments(sa.moments.mean, sa.moments.covariance(), sb.moments.mean,
                                              sb.moments.covariance())
  assert fid == pytest.approx(_fid_reference(a.astype(np.float32), b.astype(np.float32)), rel=1e-3)


def test_kid_and_std_match_numpy(clouds):
  a, b = clouds
  block = metrics.kid_block_size(max(len(a), len(b)))
  assert block == 300  # at least two blocks, so the std is defined
  mean, std = metrics.kernel_distance(a, b)
  want_mean, want_std = _kid_reference(a, b, block)
  assert mean == pytest.approx(want_mean, rel=1e-4) and std == pytest.approx(want_std, rel=1e-4)
  assert np.isfinite(std) and std > 0
  same_mean, _ = metrics.kernel_distance(a[:300], a[300:])
  assert abs(same_mean) < 0.1 * mean


def test_inception_score_matches_numpy():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(1000, 10)) * 3
  scores = []
  for part in np.array_split(logits, 10):
    p = softmax(part, axis=1)
    py = p.mean(0)
    scores.append(np.exp(np.mean(np.sum(p * (np.log(p) - np.log(py)), axis=1))))
  mean, std = metrics.inception_score(logits, splits=10)
  assert mean == pytest.approx(np.mean(scores), rel=1e-4) and std == pytest.approx(np.std(scores), rel=1e-3)
  # one-hot, uniform over K classes: IS = K; a constant prediction: IS = 1
  assert metrics.classifier_score(np.eye(10)[np.arange(100) % 10] * 50) == pytest.approx(10, rel=1e-3)
  assert metrics.classifier_score(np.tile([[5.0, 0, 0]], (50, 1))) == pytest.approx(1.0, rel=1e-5)


def test_streamed_inception_score_across_batches_equals_the_whole():
  rng = np.random.default_rng(2)
  logits = rng.normal(size=(1003, 7)) * 2
  acc = stats.FeatureStats(3, 1003, keep=0, is_splits=10)
  for start in range(0, 1003, 64):  # batches that straddle split boundaries
    acc.add(np.zeros((len(logits[start:start + 64]), 3)), logits[start:start + 64])
  assert acc.inception_score() == pytest.approx(metrics.inception_score(logits, 10), rel=1e-6)


def test_precision_recall_density_coverage_on_identical_and_disjoint_sets():
  rng = np.random.default_rng(3)
  real = rng.normal(size=(400, 16)).astype(np.float32)
  assert metrics.precision_recall(real, real.copy(), k=3) == (1.0, 1.0)
  density, coverage = metrics.density_coverage(real, real.copy(), k=5)
  assert density == pytest.approx(1.0) and coverage == 1.0
  far = real + 1000.0
  assert metrics.precision_recall(real, far, k=3) == (0.0, 0.0)
  assert metrics.density_coverage(real, far, k=5) == (0.0, 0.0)


def test_nearest_neighbour_metrics_on_a_hand_made_cloud():
  # real on a line at 0, 1, 2, 3 (k=1: every radius is 1); fakes at 0.5 and 10 (k=1: both radii are 9.5)
  real = np.array([[0.0, 0], [1, 0], [2, 0], [3, 0]], np.float32)
  fake = np.array([[0.5, 0], [10, 0]], np.float32)
  np.testing.assert_allclose(metrics.knn_radii(real, 1).numpy(), [1, 1, 1, 1])
  np.testing.assert_allclose(metrics.knn_radii(fake, 1).numpy(), [9.5**2, 9.5**2])
  # precision: 0.5 is in the balls of 0 and 1, 10 in none -> 1/2; recall: every real point is within 9.5 of 0.5
  assert metrics.precision_recall(real, fake, k=1) == (0.5, 1.0)
  # density: 0.5 lies in 2 balls, 10 in none -> 2 / (1 * 2) = 1; coverage: the balls of 0 and 1 -> 2/4
  assert metrics.density_coverage(real, fake, k=1) == (1.0, 0.5)


def test_nearest_neighbour_metrics_match_brute_force():
  rng = np.random.default_rng(4)
  real, fake = rng.normal(size=(300, 8)), rng.normal(size=(250, 8)) * 1.3 + 0.2
  d_rr = np.linalg.norm(real[:, None] - real[None], axis=-1)
  d_ff = np.linalg.norm(fake[:, None] - fake[None], axis=-1)
  d_fr = np.linalg.norm(fake[:, None] - real[None], axis=-1)
  r_real3, r_fake3 = np.sort(d_rr, 1)[:, 3], np.sort(d_ff, 1)[:, 3]
  precision = np.mean((d_fr < r_real3[None]).any(1))
  recall = np.mean((d_fr.T < r_fake3[None]).any(1))
  r_real5 = np.sort(d_rr, 1)[:, 5]
  density = (d_fr < r_real5[None]).sum() / (5 * len(fake))
  coverage = np.mean((d_fr < r_real5[None]).any(0))
  p, r = metrics.precision_recall(real, fake, k=3)
  d, c = metrics.density_coverage(real, fake, k=5)
  assert (p, r) == pytest.approx((precision, recall), abs=1 / 250)  # at most one boundary case from rounding
  assert (d, c) == pytest.approx((density, coverage), abs=1 / 250)
  assert 0.2 < p < 0.99 and 0.2 < r < 0.99  # neither trivial


def test_too_few_points_for_k_is_a_user_error():
  with pytest.raises(UserError, match="more than k=3"):
    metrics.precision_recall(np.zeros((3, 2)), np.zeros((10, 2)), k=3)


def test_cache_key_names_the_protocol(tmp_path):
  key = {"dataset": "fashion_mnist_local", "split": "test", "resolution": 32, "channels": 1, "resize_method": "pad",
         "count": 10000, "kept": 10000, "extractor": "fmnist_cnn", "extractor_fingerprint": "abc"}
  path = stats.stats_path(key, str(tmp_path))
  assert "fashion_mnist_local-test-32x32x1-fmnist_cnn-n10000-" in path
  assert stats.stats_path({**key, "extractor_fingerprint": "abd"}, str(tmp_path)) != path
  assert stats.load(key, str(tmp_path)) is None
  acc = stats.FeatureStats(2, 3, keep=2)
  acc.add(np.array([[0.0, 1], [1, 0], [2, 2]]))
  saved = stats.save(key, acc, str(tmp_path))
  loaded = stats.load(key, str(tmp_path))
  assert not saved.from_cache and loaded.from_cache and loaded.path == path
  np.testing.assert_allclose(loaded.cov, np.cov(np.array([[0.0, 1], [1, 0], [2, 2]]), rowvar=False))
  assert [p.name for p in (tmp_path / "stats").iterdir()] == [path.split("/")[-1]]  # no temporary file left
