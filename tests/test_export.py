"""Export: a fresh process reads the SavedModel back, TF Serving's loader (saved_model_cli) runs it, bad requests fail
cleanly inside the graph while the model keeps serving, versions are never overwritten, bad flags are one line."""

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys

import gin
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2

from icr_tf import checkpoints, data, export, loop
from icr_tf.errors import UserError
from tests.conftest import TINY_GIN
from tests.test_tools import error_lines, run_tool, snapshot

MAX_COUNT = 16
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")


@pytest.fixture(scope="session")
def runs(tmp_path_factory, fashion_mnist):
  """Two tiny runs (unconditional, and conditional with 10 classes), each exported once as version 1.

  Made once for all test workers (a file lock in their shared temporary folder); tests copy a run to change it.
  """
  del fashion_mnist
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent  # shared by the workers of this session
  root = root / "export_runs"
  root.mkdir(exist_ok=True)
  out = {}
  with open(root / ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    for name, extra in (("uncond", ""), ("cond", "architecture.num_classes = 10\n")):
      model_dir = root / name
      if not (model_dir / "export" / "1" / "saved_model.pb").exists():
        shutil.rmtree(model_dir, ignore_errors=True)
        gin.clear_config()
        gin.parse_config(TINY_GIN + extra)
        loop.train(str(model_dir), num_steps=2, print_fn=lambda *_: None)
        gin.clear_config()
        export.export(str(model_dir), max_count=MAX_COUNT)
      out[name] = str(model_dir)
    fcntl.flock(lock, fcntl.LOCK_UN)
  return out


def saved_model(model_dir, version=1):
  return os.path.join(model_dir, "export", str(version))


def in_memory(model_dir):
  generator, arch, _ = checkpoints.load_generator(model_dir, checkpoints.find_checkpoints(model_dir)[0])
  return generator, arch


FRESH = r"""
import sys
import numpy as np
import tensorflow as tf
out = {}
for name, path in [(n, p) for n, p in zip(sys.argv[1::2], sys.argv[2::2])]:
  model = tf.saved_model.load(path)
  z = np.load(path + "/../../z.npy")
  labels = {"labels": tf.range(len(z), dtype=tf.int32) % 10} if name == "cond" else {}
  r = model.signatures["from_z"](z=tf.constant(z), **labels)
  out[name + "_float"], out[name + "_uint8"] = r["images_float"].numpy(), r["images"].numpy()
  seeded = {"seed": tf.constant(5, tf.int64), "count": tf.constant(len(z), tf.int32), **labels}
  out[name + "_seed5"] = model.signatures["serving_default"](**seeded)["images"].numpy()
  out[name + "_seed5_again"] = model.signatures["serving_default"](**seeded)["images"].numpy()
  out[name + "_png"] = np.stack([tf.io.decode_png(p).numpy() for p in model.signatures["png"](**seeded)["png_bytes"]])
np.savez(sys.argv[0].replace(".py", ".npz"), project_imported=any(m.startswith("icr_tf") for m in sys.modules), **out)
"""


def test_fresh_process_without_the_project_matches_the_in_memory_generator(runs, tmp_path):
  z = export.latents(5, 6, 8).numpy()
  args = []
  for name, model_dir in runs.items():
    local = tmp_path / name
    shutil.copytree(saved_model(model_dir), local / "export" / "1")
    np.save(local / "z.npy", z)
    args += [name, str(local / "export" / "1")]
  script = tmp_path / "fresh.py"
  script.write_text(FRESH)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300,
                          env=env, cwd=str(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  out = np.load(tmp_path / "fresh.npz")
  assert not out["project_imported"]
  for name, model_dir in runs.items():
    generator, arch = in_memory(model_dir)
    labels = tf.range(6, dtype=tf.int32) % 10 if arch.conditional else None
    expected = loop.generate(generator, arch, tf.constant(z), labels)
    assert out[f"{name}_float"].shape == (6, 16, 16, 1) and out[f"{name}_uint8"].dtype == np.uint8
    np.testing.assert_allclose(out[f"{name}_float"], expected, atol=1e-5)
    np.testing.assert_array_equal(out[f"{name}_uint8"], data.to_uint8(out[f"{name}_float"]).numpy())
    # seed 5 draws the z above: serving_default is from_z of latents(seed), the same in every call and process.
    np.testing.assert_array_equal(out[f"{name}_seed5"], out[f"{name}_uint8"])
    np.testing.assert_array_equal(out[f"{name}_seed5_again"], out[f"{name}_seed5"])
    np.testing.assert_array_equal(out[f"{name}_png"], out[f"{name}_seed5"])
  assert np.abs(out["uncond_float"] - out["cond_float"]).max() > 1e-3  # two models, not one read twice


def signature_blocks(show_output):
  return dict(re.findall(r"signature_def\['(\w+)'\]:\n(.*?)Method name is", show_output, re.S))


def test_saved_model_cli_show_lists_the_three_signatures(runs):
  result = subprocess.run([SAVED_MODEL_CLI, "show", "--all", "--dir", saved_model(runs["cond"])],
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  blocks = signature_blocks(result.stdout)
  assert {"serving_default", "from_z", "png"} <= set(blocks)

  def tensors(block):
    return {name: (dtype, shape) for name, dtype, shape in
            re.findall(r"\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: (\([^)]*\))", block)}

  seeded = {"seed": ("DT_INT64", "()"), "count": ("DT_INT32", "()"), "labels": ("DT_INT32", "(-1)")}
  assert tensors(blocks["serving_default"]) == {**seeded, "images": ("DT_UINT8", "(-1, 16, 16, 1)")}
  assert tensors(blocks["from_z"]) == {"z": ("DT_FLOAT", "(-1, 8)"), "labels": ("DT_INT32", "(-1)"),
                                       "images": ("DT_UINT8", "(-1, 16, 16, 1)"),
                                       "images_float": ("DT_FLOAT", "(-1, 16, 16, 1)")}
  assert tensors(blocks["png"]) == {**seeded, "png_bytes": ("DT_STRING", "(-1)")}


def cli_run(path, signature, outdir, *inputs):
  result = subprocess.run([SAVED_MODEL_CLI, "run", "--dir", path, "--tag_set", "serve", "--signature_def", signature,
                           *inputs, "--outdir", str(outdir), "--overwrite"], capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  return outdir


def test_saved_model_cli_run_uses_tf_servings_loader(runs, tmp_path):
  uncond, cond = saved_model(runs["uncond"]), saved_model(runs["cond"])
  out = cli_run(uncond, "serving_default", tmp_path / "a", "--input_exprs", "seed=7;count=3")
  images = np.load(out / "images.npy")
  assert images.shape == (3, 16, 16, 1) and images.dtype == np.uint8
  loaded = tf.saved_model.load(uncond)
  expected = loaded.signatures["from_z"](z=export.latents(7, 3, 8))["images"].numpy()
  np.testing.assert_array_equal(images, expected)

  np.save(tmp_path / "z.npy", export.latents(3, 4, 8).numpy())
  np.save(tmp_path / "labels.npy", np.array([0, 3, 9, 9], np.int32))
  out = cli_run(cond, "from_z", tmp_path / "b", "--inputs", f"z={tmp_path / 'z.npy'};labels={tmp_path / 'labels.npy'}")
  images, floats = np.load(out / "images.npy"), np.load(out / "images_float.npy")
  assert images.shape == floats.shape == (4, 16, 16, 1) and images.dtype == np.uint8 and floats.dtype == np.float32
  assert floats.min() >= -1.0 and floats.max() <= 1.0

  out = cli_run(cond, "png", tmp_path / "c", "--input_exprs", "seed=3;count=4;labels=[0,3,9,9]")
  pngs = np.load(out / "png_bytes.npy", allow_pickle=True)
  assert pngs.shape == (4,)
  np.testing.assert_array_equal(np.stack([tf.io.decode_png(p).numpy() for p in pngs]), images)


def test_bad_requests_fail_inside_the_graph_and_the_model_keeps_serving(runs):
  """Through a session as TF Serving runs it: it does not check fed shapes against the signature; the graph does."""
  with tf.compat.v1.Session(graph=tf.Graph()) as sess:
    meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], saved_model(runs["cond"]))

    def runner(signature, inputs, output):
      sig = meta.signature_def[signature]
      options = config_pb2.CallableOptions(feed=[sig.inputs[k].name for k in inputs],
                                           fetch=[sig.outputs[output].name])
      return sess._make_callable_from_options(options)  # pylint: disable=protected-access

    seeded = runner("serving_default", ["seed", "count", "labels"], "images")
    from_z = runner("from_z", ["z", "labels"], "images")
    good = seeded(np.int64(1), np.int32(2), np.array([0, 9], np.int32))[0]
    assert good.shape == (2, 16, 16, 1)
    bad = {
        "negative count": (seeded, (np.int64(1), np.int32(-1), np.zeros([0], np.int32)), "count must be in [1, 16]"),
        "zero count": (seeded, (np.int64(1), np.int32(0), np.zeros([0], np.int32)), "count must be in [1, 16]"),
        "count above the bound": (seeded, (np.int64(1), np.int32(17), np.zeros([17], np.int32)),
                                  "count must be in [1, 16] (max_count of this export)"),
        "label above range": (seeded, (np.int64(1), np.int32(2), np.array([0, 10], np.int32)),
                              "labels must be class ids in [0, 10)"),
        "negative label": (seeded, (np.int64(1), np.int32(2), np.array([-1, 3], np.int32)),
                           "labels must be class ids in [0, 10)"),
        "labels not one per image": (seeded, (np.int64(1), np.int32(3), np.array([1, 2], np.int32)),
                                     "labels must hold one class id per image"),
        "z too narrow": (from_z, (np.zeros([2, 5], np.float32), np.array([1, 2], np.int32)),
                         "z must be float32 [N, 8] (z_dim 8)"),
        "z of rank 1": (from_z, (np.zeros([8], np.float32), np.array([1], np.int32)), "expected shape [?,8]"),
        "too many rows of z": (from_z, (np.zeros([17, 8], np.float32), np.zeros([17], np.int32)),
                               "the number of rows of z must be in [1, 16]"),
    }
    for case, (fn, args, message) in bad.items():
      with pytest.raises(tf.errors.InvalidArgumentError) as error:
        fn(*args)
      assert message in str(error.value), case
    np.testing.assert_array_equal(seeded(np.int64(1), np.int32(2), np.array([0, 9], np.int32))[0], good)


def test_versions_are_added_never_overwritten(runs, tmp_path):
  model_dir = str(tmp_path / "run")
  shutil.copytree(runs["uncond"], model_dir)
  os.makedirs(os.path.join(model_dir, "export", ".tmp-7-1"))  # an interrupted export, and a stray folder
  os.makedirs(os.path.join(model_dir, "export", "notes"))
  before = snapshot(os.path.join(model_dir, "export", "1"))
  result = run_tool("export.py", f"--model_dir={model_dir}", f"--max_count={MAX_COUNT}", "--reuse_existing")
  assert result.returncode == 0, result.stderr[-2000:]
  assert result.stdout.splitlines()[0] == f"export: {model_dir}/export/1 (already exported from this checkpoint)"
  assert export.export(model_dir, max_count=MAX_COUNT)["path"] == f"{model_dir}/export/2"
  third = export.export(model_dir, max_count=MAX_COUNT, truncation=0.5, reuse=True)  # other options: a new version
  assert third["version"] == 3 and not third["reused"]
  assert export.versions(os.path.join(model_dir, "export")) == [1, 2, 3]
  assert snapshot(os.path.join(model_dir, "export", "1")) == before
  with open(os.path.join(third["path"], export.INFO)) as f:
    info = json.load(f)
  assert info["truncation"] == 0.5 and info["step"] == 2 and info["architecture"]["z_dim"] == 8
  assert not [n for n in os.listdir(os.path.join(model_dir, "export")) if n.startswith(".tmp-") and n != ".tmp-7-1"]
  seeded = tf.saved_model.load(third["path"]).signatures["serving_default"]
  images = seeded(seed=tf.constant(2, tf.int64), count=tf.constant(4))["images"]
  assert images.shape == (4, 16, 16, 1)


BAD_FLAGS = {
    "max_count": (["--max_count=0"], "max_count must be a positive integer; got 0"),
    "checkpoint": (["--checkpoint=7"], "has no checkpoint of step 7; it has steps [2]"),
}


@pytest.mark.parametrize("case", list(BAD_FLAGS))
def test_export_binary_rejects_bad_flags_in_one_line(runs, case):
  flags, message = BAD_FLAGS[case]
  before = snapshot(os.path.join(runs["uncond"], "export"))
  result = run_tool("export.py", f"--model_dir={runs['uncond']}", *flags)
  assert result.returncode == 2
  lines = error_lines(result)
  assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert snapshot(os.path.join(runs["uncond"], "export")) == before


def test_export_library_refusals(runs, tmp_path):
  with pytest.raises(UserError, match="'every' names several checkpoints; accepted: latest, best"):
    export.export(runs["uncond"], checkpoint="every")
  with pytest.raises(UserError, match="no best checkpoint"):
    export.export(runs["uncond"], checkpoint="best")
  with pytest.raises(UserError, match="does not exist"):
    export.export(str(tmp_path / "nothing"))
  with pytest.raises(UserError, match="max_count must be a positive integer; got True"):
    export.export(runs["uncond"], max_count=True)
  for bad in (-1.0, 0, float("inf"), float("nan")):
    with pytest.raises(UserError, match=r"truncation must be a positive number \(\|z\| bound\) or none; got"):
      export.export(runs["uncond"], truncation=bad)
  assert export.versions(os.path.join(runs["uncond"], "export")) == [1]

