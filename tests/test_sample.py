"""Seeded latents and interpolation (golden properties), and the sample binary from a checkpoint and from an export."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from icr_tf import export, images, loop, models
from icr_tf.errors import UserError
from tests.test_export import runs, saved_model  # noqa: F401  (the shared tiny runs and their exports)
from tests.test_tools import error_lines, run_tool

TILE = 16 + 2  # a 16x16 image and the grid's 2-pixel gap


def test_latents_are_seeded_and_match_the_training_sample_grid():
  a, b = export.latents(3, 5, 7), export.latents(3, 5, 7)
  np.testing.assert_array_equal(a, b)
  assert a.shape == (5, 7) and a.dtype == tf.float32
  assert np.abs(a - export.latents(4, 5, 7)).max() > 0.1
  arch = models.Architecture(models.SNDCGAN, 16, 1, 7, 0, 4, 4)
  np.testing.assert_array_equal(a, loop.sample_inputs(arch, 5, seed=3)[0])


def test_truncated_latents_follow_the_truncated_normal():
  z = export.latents(0, 4000, 16, truncation=1.0).numpy()
  assert np.abs(z).max() <= 1.0
  # N(0, 1) truncated to [-1, 1]: mean 0, std sqrt(1 - 2 phi(1) / (2 Phi(1) - 1)) = 0.53956
  assert abs(z.mean()) < 0.01 and z.std() == pytest.approx(0.53956, abs=0.005)
  wide = export.latents(0, 4000, 16, truncation=8.0).numpy()  # a bound far out: the standard normal
  assert np.all(np.isfinite(wide)) and wide.std() == pytest.approx(1.0, abs=0.02)


def test_interpolation_golden_and_properties():
  a, b = np.array([[1.0, 0.0], [2.0, 2.0]]), np.array([[0.0, 1.0], [4.0, 4.0]])
  linear = export.interpolate(a, b, 3)
  np.testing.assert_allclose(linear[0], [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
  slerp = export.interpolate(a, b, 3, spherical=True)
  np.testing.assert_allclose(slerp[0], [[1.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5)], [0.0, 1.0]], atol=1e-6)
  np.testing.assert_allclose(slerp[1], linear[1])  # parallel endpoints: the path is the line
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(4, 32)), rng.normal(size=(4, 32))
  b *= np.linalg.norm(a, axis=1, keepdims=True) / np.linalg.norm(b, axis=1, keepdims=True)
  path = export.interpolate(a, b, 9, spherical=True)
  np.testing.assert_allclose(path[:, 0], a, atol=1e-5)
  np.testing.assert_allclose(path[:, -1], b, atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(path, axis=-1), np.linalg.norm(a, axis=-1)[:, None].repeat(9, 1),
                             rtol=1e-5)
  assert np.all(np.linalg.norm(export.interpolate(a, b, 9)[:, 4], axis=-1) < np.linalg.norm(a, axis=-1) - 0.5)


def read_png(path):
  return tf.io.decode_png(tf.io.read_file(str(path))).numpy()


def test_a_row_per_class_the_same_from_checkpoint_and_export(runs, tmp_path):  # noqa: F811
  from_ckpt, from_export = tmp_path / "ckpt.png", tmp_path / "export.png"
  for source, output in ((f"--model_dir={runs['cond']}", from_ckpt), (f"--saved_model={runs['cond']}/export",
                                                                     from_export)):
    result = run_tool("sample.py", source, f"--output={output}", "--seed=4", "--columns=5")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"samples: {output} (10x5 from ")
  grid = read_png(from_export)
  assert grid.shape == (10 * TILE + 2, 5 * TILE + 2, 1)
  assert np.abs(read_png(from_ckpt).astype(int) - grid).max() <= 1
  from_z = tf.saved_model.load(saved_model(runs["cond"])).signatures["from_z"]
  z = export.latents(4, 5, 8)
  rows = [from_z(z=z, labels=tf.fill([5], c))["images"].numpy() for c in range(10)]  # class c, the same z per column
  np.testing.assert_array_equal(grid, images.grid(np.concatenate(rows), rows=10))


def test_spherical_interpolation_grid_from_an_export(runs, tmp_path):  # noqa: F811
  output = tmp_path / "slerp.png"
  result = run_tool("sample.py", f"--saved_model={saved_model(runs['uncond'])}", f"--output={output}",
                    "--mode=spherical", "--rows=3", "--columns=4", "--seed=9", "--truncation=1.5")
  assert result.returncode == 0, result.stderr[-2000:]
  grid = read_png(output)
  assert grid.shape == (3 * TILE + 2, 4 * TILE + 2, 1)
  ends = export.latents(9, 6, 8, truncation=1.5).numpy()
  z = export.interpolate(ends[0::2], ends[1::2], 4, spherical=True).reshape(12, 8)
  from_z = tf.saved_model.load(saved_model(runs["uncond"])).signatures["from_z"]
  np.testing.assert_array_equal(grid, images.grid(from_z(z=tf.constant(z))["images"].numpy(), rows=3))


def test_sample_binary_rejects_bad_flags_in_one_line(runs, tmp_path):  # noqa: F811
  output = tmp_path / "x.png"
  result = run_tool("sample.py", f"--model_dir={runs['cond']}", f"--output={output}", "--classes=1,12")
  assert result.returncode == 2
  lines = error_lines(result)
  assert len(lines) == 1 and "classes [12] are not class ids of this model; accepted: 0 to 9" in lines[0], \
      result.stderr[-2000:]
  assert "Traceback" not in result.stderr and not output.exists()


BAD_GRIDS = {
    "unknown mode": ({"mode": "cubic"}, "unknown mode 'cubic'; accepted: samples, linear, spherical"),
    "one interpolation step": ({"mode": "linear", "columns": 1}, "columns must be an integer in [2, 64] for mode "
                               "linear; got 1"),
    "no rows": ({"rows": 0}, "rows must be an integer in [1, 64] for mode samples; got 0"),
    "classes of an unconditional model": ({"classes": [1]}, "classes [1] given, but the model is unconditional"),
    "truncation": ({"truncation": -2.0}, "truncation must be a positive number"),
    "not a png": ({"output": "grid.jpg"}, "output 'grid.jpg' must be a .png file"),
}


def test_bad_grids_are_refused_before_anything_is_written(runs, tmp_path):  # noqa: F811
  source = export.open_source(saved_model=os.path.join(runs["uncond"], "export"))
  assert (source.z_dim, source.num_classes) == (8, 0)
  for case, (kwargs, message) in BAD_GRIDS.items():
    kwargs = {"output": str(tmp_path / "x.png"), **kwargs}
    with pytest.raises(UserError, match=re.escape(message)):
      export.sample_grid(source, **kwargs)
    assert not os.listdir(tmp_path), case
  with pytest.raises(UserError, match="give either a model_dir"):
    export.open_source(runs["uncond"], saved_model=os.path.join(runs["uncond"], "export"))
  with pytest.raises(UserError, match="neither a SavedModel nor a folder of numbered versions"):
    export.open_source(saved_model=runs["uncond"])
