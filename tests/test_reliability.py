"""Faults: kills at random moments and in the middle of a checkpoint write, determinism across a resume, non-finite
losses, two trainers on one model_dir, a full disk, a checkpoint of another architecture."""

import glob
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import gin
import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator

from icr_tf import checkpoints, loop
from icr_tf.errors import ConfigError, UserError
from icr_tf.lock import RunLock
from icr_tf.train_step import NonFiniteError
from tests.conftest import REPO
from tests.test_tools import TINY_FLAGS, error_lines, run_tool


class Trainer:
  """tools/train.py in a subprocess, its stdout collected line by line."""

  def __init__(self, model_dir, *flags):
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONUNBUFFERED="1")
    self.proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "train.py"), *TINY_FLAGS, *flags,
                                  f"--model_dir={model_dir}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, env=env, cwd=REPO)
    self.lines = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.proc.stdout:
      self.lines.append(line.rstrip("\n"))

  def steps_printed(self):
    return [int(line.split()[1].split("/")[0]) for line in list(self.lines) if line.startswith("step ")]

  def wait_for_training(self, timeout=120):
    """Waits for the first step line; False if the trainer ended without training (its budget was reached)."""
    deadline = time.monotonic() + timeout
    while not self.steps_printed():
      if self.proc.poll() is not None:
        assert self.proc.returncode == 0, self.proc.stderr.read()[-3000:]
        return False
      assert time.monotonic() < deadline, "the trainer did not start"
      time.sleep(0.05)
    return True

  def kill(self):
    self.proc.send_signal(signal.SIGKILL)
    self.proc.wait()
    self._reader.join(timeout=10)

  def finish(self, timeout=300):
    self.proc.wait(timeout=timeout)
    self._reader.join(timeout=10)
    return self.proc.returncode


def _kill_during_a_checkpoint_write(trainer, ckpt_dir, timeout=60):
  """Polls for the temporary folder that a checkpoint save writes into, and kills the trainer while it exists."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline and trainer.proc.poll() is None:
    if glob.glob(os.path.join(ckpt_dir, "*_temp*")):
      trainer.kill()
      return True
  return False


def test_killed_again_and_again_then_resumed(tmp_path, fashion_mnist):
  del fashion_mnist
  model_dir, budget, every = tmp_path / "run", 150, 2
  flags = [f"--num_steps={budget}", "--gin_bindings=train.log_every = 1", f"--gin_bindings=train.checkpoint_every = {every}",
           "--gin_bindings=train.sample_every = 1000", "--gin_bindings=train.keep_checkpoints = 2"]
  rng = random.Random(0)
  kills, mid_write, sessions = 0, 0, []
  while kills < 5 or mid_write < 1:
    assert len(sessions) < 16, f"{kills} kills, {mid_write} during a checkpoint write"
    trainer = Trainer(model_dir, *flags)
    if not trainer.wait_for_training():
      break
    if kills % 2 == 1:  # every other kill lands inside a checkpoint write
      killed = _kill_during_a_checkpoint_write(trainer, model_dir / "checkpoints")
      mid_write += killed
    else:
      time.sleep(rng.uniform(0.0, 1.5))
      killed = trainer.proc.poll() is None
      if killed:
        trainer.kill()
    if not killed:  # the budget was reached first
      assert trainer.finish() == 0
      break
    kills += 1
    sessions.append(trainer)
  assert kills >= 5 and mid_write >= 1, f"{kills} kills, {mid_write} during a checkpoint write: raise the budget"
  last = Trainer(model_dir, *flags)
  assert last.finish() == 0, last.proc.stderr.read()[-3000:]
  sessions.append(last)

  # The budget is reached; the checkpoint loads; the step counter says what was trained.
  path = checkpoints.find_checkpoints(str(model_dir), "latest")[0]
  assert checkpoints.step_of(path) == budget
  reader = tf.train.load_checkpoint(path)
  assert reader.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == budget
  assert reader.get_tensor("g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == budget
  assert reader.get_tensor("examples_seen/.ATTRIBUTES/VARIABLE_VALUE") == budget * 8
  checkpoints.load_generator(str(model_dir), path)
  assert not glob.glob(str(model_dir / "checkpoints" / "*_temp*"))

  # Each kill lost at most one checkpoint interval: the next session started at most `every` steps back.
  starts = [int(next(l for l in s.lines if l.startswith("training ")).split(": step ")[1].split(" ->")[0])
            for s in sessions]
  for killed, start in zip(sessions[:-1], starts[1:]):
    reached = max(killed.steps_printed(), default=0)
    assert reached - every <= start <= reached, (reached, start)
  assert any("taking over the lock left by a trainer that is gone" in l for s in sessions[1:] for l in s.lines)

  # TensorBoard shows each step once, from the session that went on.
  acc = plugin_event_accumulator.EventAccumulator(str(model_dir / "summaries" / "train"),
                                                  size_guidance={"tensors": 0})
  acc.Reload()
  for tag in ("losses/d_total", "losses/g_total", "logits/d_real"):
    steps = [e.step for e in acc.Tensors(tag)]
    assert steps == list(range(1, budget + 1)), (tag, steps)


def test_determinism_across_a_resume(tmp_path, fashion_mnist):
  del fashion_mnist
  flags = ["--deterministic", "--gin_bindings=train.checkpoint_every = 3"]
  one_go, resumed = tmp_path / "one_go", tmp_path / "resumed"
  assert run_tool("train.py", *TINY_FLAGS, *flags, f"--model_dir={one_go}", "--num_steps=6").returncode == 0
  assert run_tool("train.py", *TINY_FLAGS, *flags, f"--model_dir={resumed}", "--num_steps=3").returncode == 0
  assert run_tool("train.py", *TINY_FLAGS, *flags, f"--model_dir={resumed}", "--num_steps=6").returncode == 0
  a = tf.train.load_checkpoint(str(one_go / "checkpoints" / "ckpt-6"))
  b = tf.train.load_checkpoint(str(resumed / "checkpoints" / "ckpt-6"))
  names = [n for n, _ in tf.train.list_variables(str(one_go / "checkpoints" / "ckpt-6")) if "VARIABLE_VALUE" in n]
  assert len(names) > 50
  for name in names:
    if name != "save_counter/.ATTRIBUTES/VARIABLE_VALUE":  # counts saves, not steps
      np.testing.assert_array_equal(a.get_tensor(name), b.get_tensor(name), err_msg=name)


def test_non_finite_loss_stops_training_and_keeps_a_finite_checkpoint(tiny_config, tmp_path):
  del tiny_config
  loop.train(str(tmp_path), num_steps=4, print_fn=lambda *_: None)
  # Spectral norm and batch norm make both networks indifferent to the scale of their weights: only an overflow
  # to Inf (about 4 Adam steps of 1e38) makes the losses non-finite.
  gin.parse_config("train.d_optimizer = @D/keras.optimizers.Adam\nD/keras.optimizers.Adam.learning_rate = 1e38\n"
                   "train.g_optimizer = @G/keras.optimizers.Adam\nG/keras.optimizers.Adam.learning_rate = 1e38")
  with pytest.raises(NonFiniteError, match=r"non-finite .*(losses|logits|grad_norm|regularizers)/.* at step \d+;"
                                           r" training stopped without a checkpoint"):
    loop.train(str(tmp_path), num_steps=40, print_fn=lambda *_: None)
  path = checkpoints.find_checkpoints(str(tmp_path), "latest")[0]
  reader = tf.train.load_checkpoint(path)
  for name, _ in tf.train.list_variables(path):
    value = reader.get_tensor(name)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
      assert np.all(np.isfinite(value)), name


def test_second_trainer_is_refused_and_a_dead_holder_is_taken_over(tmp_path):
  holder = subprocess.Popen([sys.executable, "-c", (
      "import sys, time; sys.path.insert(0, %r)\n"
      "from icr_tf.lock import RunLock\n"
      "RunLock(%r).acquire(); print('locked', flush=True); time.sleep(600)") % (REPO, str(tmp_path))],
                            stdout=subprocess.PIPE, text=True)
  assert holder.stdout.readline().strip() == "locked"
  with pytest.raises(UserError, match=rf"model_dir {tmp_path} is in use by another trainer \(pid {holder.pid} on "):
    RunLock(str(tmp_path)).acquire()
  holder.send_signal(signal.SIGKILL)
  holder.wait()
  lock = RunLock(str(tmp_path)).acquire()
  assert lock.stale_holder["pid"] == holder.pid
  lock.release()


def test_second_trainer_from_the_binary_gets_one_line(tmp_path, fashion_mnist):
  del fashion_mnist
  first = Trainer(tmp_path, "--num_steps=100000", "--gin_bindings=train.log_every = 1")
  try:
    assert first.wait_for_training()
    second = run_tool("train.py", *TINY_FLAGS, f"--model_dir={tmp_path}", "--num_steps=4")
    assert second.returncode == 2
    lines = error_lines(second)
    assert len(lines) == 1 and f"in use by another trainer (pid {first.proc.pid}" in lines[0]
  finally:
    first.kill()


def test_sigterm_stops_with_a_checkpoint(tmp_path, fashion_mnist):
  del fashion_mnist
  trainer = Trainer(tmp_path, "--num_steps=100000", "--gin_bindings=train.log_every = 1",
                    "--gin_bindings=train.checkpoint_every = 1000")
  assert trainer.wait_for_training()
  trainer.proc.send_signal(signal.SIGTERM)
  assert trainer.finish() == 128 + signal.SIGTERM
  stopped = [l for l in trainer.lines if l.startswith("stopped at step ")]
  assert stopped
  step = int(stopped[0].split()[3])
  assert checkpoints.step_of(checkpoints.find_checkpoints(str(tmp_path), "latest")[0]) == step


def _can_mount_tmpfs(directory):
  return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)],
                        capture_output=True).returncode == 0 and subprocess.run(["umount", str(directory)]).returncode == 0


def _limit_file_size(limit):
  def preexec():
    import resource  # pylint: disable=g-import-not-at-top
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
  return preexec


def test_full_disk_while_checkpointing(tmp_path, fashion_mnist):
  del fashion_mnist
  model_dir = tmp_path / "run"
  # The default width, so that a checkpoint (about 5 MB) is far larger than the other files of a run.
  width = ["--gin_bindings=architecture.g_width = 16", "--gin_bindings=architecture.d_width = 16",
           "--gin_bindings=train.checkpoint_every = 2", "--gin_bindings=train.sample_every = 1000"]
  assert run_tool("train.py", *TINY_FLAGS, *width, f"--model_dir={model_dir}", "--num_steps=2").returncode == 0
  ckpt_size = sum(os.path.getsize(p) for p in glob.glob(str(model_dir / "checkpoints" / "ckpt-2*")))
  used = sum(os.path.getsize(p) for p in glob.glob(str(model_dir / "**"), recursive=True) if os.path.isfile(p))
  mount = tmp_path / "small_disk"
  mount.mkdir()
  env = dict(os.environ, PYTHONPATH=REPO)
  cmd = [sys.executable, os.path.join(REPO, "tools", "train.py"), *TINY_FLAGS, *width, "--num_steps=4"]
  if _can_mount_tmpfs(mount):  # a real full disk: a tmpfs with room for the run but not one more checkpoint
    size_kb = (used + ckpt_size // 2) // 1024 + 64
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(mount)], check=True)
    try:
      shutil.copytree(model_dir, mount / "run")
      result = subprocess.run(cmd + [f"--model_dir={mount / 'run'}"], capture_output=True, text=True, env=env,
                              cwd=REPO, timeout=300)
      state = (mount / "run" / "checkpoints" / "checkpoint").read_text()
      leftovers = glob.glob(str(mount / "run" / "checkpoints" / "*_temp*"))
      intact = tf.train.load_checkpoint(str(mount / "run" / "checkpoints" / "ckpt-2")) is not None
    finally:
      subprocess.run(["umount", str(mount)], check=True)
    expected = "No space left on device"
  else:  # no mount here: a file-size limit, under which writes really fail (EFBIG)
    result = subprocess.run(cmd + [f"--model_dir={model_dir}"], capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=300, preexec_fn=_limit_file_size(ckpt_size // 2))
    state = (model_dir / "checkpoints" / "checkpoint").read_text()
    leftovers = glob.glob(str(model_dir / "checkpoints" / "*_temp*"))
    intact = tf.train.load_checkpoint(str(model_dir / "checkpoints" / "ckpt-2")) is not None
    expected = "too large"
  assert result.returncode == 2, result.stderr[-3000:]
  lines = error_lines(result)
  assert len(lines) == 1, result.stderr[-3000:]
  assert "cannot write the checkpoint of step 4" in lines[0] and expected.lower() in lines[0].lower(), lines[0]
  assert "the newest complete checkpoint is" in lines[0] and lines[0].rstrip().endswith("to resume from it")
  assert 'model_checkpoint_path: "ckpt-2"' in state and intact and not leftovers


def test_checkpoint_of_another_architecture_is_refused(tiny_config, tmp_path):
  del tiny_config
  ours, theirs = tmp_path / "ours", tmp_path / "theirs"
  loop.train(str(ours), num_steps=2, print_fn=lambda *_: None)
  gin.parse_config("architecture.g_width = 6")
  loop.train(str(theirs), num_steps=2, print_fn=lambda *_: None)
  gin.parse_config("architecture.g_width = 4")
  shutil.rmtree(ours / "checkpoints")
  shutil.copytree(theirs / "checkpoints", ours / "checkpoints")  # run.json says width 4, the checkpoint holds 6
  with pytest.raises(ConfigError, match="does not fit this architecture"):
    loop.train(str(ours), num_steps=4, print_fn=lambda *_: None)


@pytest.mark.parametrize("tool", ["eval.py", "export.py", "sample.py"])
def test_empty_model_dir_for_eval_export_and_sample(tmp_path, tool):
  empty = tmp_path / "empty"
  empty.mkdir()
  args = [f"--model_dir={empty}"] + (["--output=" + str(tmp_path / "s.png")] if tool == "sample.py" else [])
  result = run_tool(tool, *args)
  assert result.returncode == 2, result.stderr[-2000:]
  lines = error_lines(result)
  assert len(lines) == 1 and f"model_dir {empty} holds no run" in lines[0], result.stderr[-2000:]
  assert "Traceback" not in result.stderr and os.listdir(empty) == []
