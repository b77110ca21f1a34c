"""The train step: every loss x regularizer on one device and on 2 replicas, 1 vs 2 replicas agree, one trace,
identity augmentation gives zero consistency, one D call over a concatenation is exact, n_dis and EMA bookkeeping."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from icr_tf import augment, data, losses, models, regularizers
from icr_tf.loop import build_state
from icr_tf.train_step import TrainStep
from tests.conftest import mirrored

REGULARIZERS = {
    "none": {},
    "cr": {"lambda_real": 10.0},
    "bcr": {"lambda_real": 10.0, "lambda_fake": 10.0},
    "zcr": {"lambda_dis": 5.0, "lambda_gen": 0.5},
    "icr": {"lambda_real": 10.0, "lambda_fake": 10.0, "lambda_dis": 5.0, "lambda_gen": 0.5},
}
BATCH = 8


def _arch(num_classes=0):
  return models.architecture(family=models.SNDCGAN, resolution=8, channels=1, z_dim=4, num_classes=num_classes,
                             g_width=2, d_width=2)


def _setup(strategy, arch, loss, consistency, **step_kwargs):
  tf.keras.utils.set_random_seed(0)
  state = build_state(strategy, arch)
  source = data.data_source(num_examples=64, resize_method="resize")
  dataset = data.distributed_train_dataset(strategy, source, arch.resolution, arch.channels, BATCH, seed=0,
                                           elements_consumed=0)
  trainer = TrainStep(strategy, state, arch, loss, consistency, BATCH, seed=0, **step_kwargs)
  return state, trainer, iter(dataset)


@pytest.mark.parametrize("strategy_name", ["one_device", "mirrored"])
@pytest.mark.parametrize("loss_cls,reg", list(itertools.product(
    [losses.NonSaturating, losses.Hinge, losses.Wasserstein, losses.LeastSquares], list(REGULARIZERS))),
                         ids=lambda v: v.name if hasattr(v, "name") else v)
def test_one_step_smoke(fashion_mnist, strategy_name, loss_cls, reg):
  strategy = mirrored() if strategy_name == "mirrored" else tf.distribute.get_strategy()
  consistency = regularizers.consistency(**REGULARIZERS[reg])
  state, trainer, iterator = _setup(strategy, _arch(), loss_cls(), consistency)
  d_before = [v.numpy().copy() for v in state.discriminator.trainable_variables]
  g_before = [v.numpy().copy() for v in state.generator.trainable_variables]
  metrics = trainer(iterator, 1)
  assert set(metrics) == set(trainer.metric_names())
  assert all(np.isfinite(float(v)) for v in metrics.values())
  assert int(state.step.numpy()) == 1
  assert int(state.d_optimizer.iterations.numpy()) == 1 and int(state.g_optimizer.iterations.numpy()) == 1
  assert any(not np.array_equal(a, b.numpy()) for a, b in zip(d_before, state.discriminator.trainable_variables))
  assert any(not np.array_equal(a, b.numpy()) for a, b in zip(g_before, state.generator.trainable_variables))
  if reg == "icr":
    assert float(metrics["reg_zcr_gen"]) <= 0.0 and float(metrics["reg_real"]) >= 0.0


def _run_two_steps(strategy, num_classes):
  consistency = regularizers.consistency(**REGULARIZERS["icr"])
  state, trainer, iterator = _setup(strategy, _arch(num_classes), losses.Hinge(), consistency)
  first = trainer(iterator, 1)
  second = trainer(iterator, 1)
  return first, second, [v.numpy() for v in state.generator_ema.variables]


@pytest.mark.parametrize("num_classes", [0, 10])
def test_one_and_two_replicas_agree(fashion_mnist, num_classes):
  one = _run_two_steps(tf.distribute.get_strategy(), num_classes)
  two = _run_two_steps(mirrored(), num_classes)
  for a, b in zip(one[:2], two[:2]):
    for k in a:
      np.testing.assert_allclose(float(a[k]), float(b[k]), rtol=2e-4, atol=2e-5, err_msg=k)
  for a, b in zip(one[2], two[2]):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_train_step_traces_once(fashion_mnist):
  consistency = regularizers.consistency(**REGULARIZERS["icr"])
  state, trainer, iterator = _setup(tf.distribute.get_strategy(), _arch(), losses.NonSaturating(), consistency)
  for n in (1, 3, 2, 5):
    trainer(iterator, n)
  assert trainer.trace_count == 1
  assert int(state.step.numpy()) == 11


def test_identity_augmentation_gives_exactly_zero_consistency(fashion_mnist):
  consistency = regularizers.consistency(lambda_real=10.0, lambda_fake=10.0, augment_ops=(augment.identity,))
  _, trainer, iterator = _setup(tf.distribute.get_strategy(), _arch(), losses.NonSaturating(), consistency)
  metrics = trainer(iterator, 2)
  assert float(metrics["reg_real"]) == 0.0 and float(metrics["reg_fake"]) == 0.0
  assert float(metrics["d_loss"]) == pytest.approx(float(metrics["d_adv"]), rel=1e-6)


def test_discriminator_is_batch_independent_so_one_fused_call_is_exact():
  """D sees real, fake and augmented batches in one call over their concatenation: that is exact because D has no
  batch-dependent layer (spectral norm, no batch norm), whatever the family."""
  for family in (models.SNDCGAN, models.ResNet):
    arch = models.architecture(family=family, resolution=16, channels=3, z_dim=4, num_classes=5, g_width=4,
                               d_width=4)
    d = models.build_discriminator(arch)
    a, b = tf.random.normal([3, 16, 16, 3]), tf.random.normal([5, 16, 16, 3])
    la, lb = tf.constant([0, 1, 2]), tf.constant([4, 3, 2, 1, 0])
    fused = models.call_model(d, arch, tf.concat([a, b], 0), tf.concat([la, lb], 0), training=False)
    separate = tf.concat([models.call_model(d, arch, a, la, training=False),
                          models.call_model(d, arch, b, lb, training=False)], 0)
    np.testing.assert_allclose(fused.numpy(), separate.numpy(), rtol=1e-5, atol=1e-6)


def test_n_dis_and_ema(fashion_mnist):
  consistency = regularizers.consistency()
  state, trainer, iterator = _setup(tf.distribute.get_strategy(), _arch(), losses.NonSaturating(), consistency,
                                    n_dis=3, ema_decay=0.9)
  initial = [v.numpy().copy() for v in state.generator.variables]
  trainer(iterator, 4)
  assert int(state.d_optimizer.iterations.numpy()) == 12 and int(state.g_optimizer.iterations.numpy()) == 4
  g = [v.numpy() for v in state.generator.trainable_variables]
  ema = [v.numpy() for v in state.generator_ema.trainable_variables]
  assert any(not np.allclose(a, b) for a, b in zip(g, ema))
  assert any(not np.allclose(a, b) for a, b in zip(initial, ema))

  state0, trainer0, iterator0 = _setup(tf.distribute.get_strategy(), _arch(), losses.NonSaturating(), consistency,
                                       ema_decay=0.0)
  trainer0(iterator0, 2)
  for a, b in zip(state0.generator.variables, state0.generator_ema.variables):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("kwargs", [{"n_dis": 0}, {"n_dis": 1.5}, {"ema_decay": 1.0}, {"ema_decay": -0.1}])
def test_bad_step_settings_are_refused(kwargs):
  from icr_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match=f"TrainStep.{next(iter(kwargs))} must be"):
    TrainStep(tf.distribute.get_strategy(), None, _arch(), losses.Hinge(), regularizers.consistency(), 8, 0,
              **kwargs)
