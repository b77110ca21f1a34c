"""The one place that imports TF-GAN.

TF-GAN 2.1 defines classes on `tf.estimator` at import time; `tf.estimator` was removed in TF 2.16. We give `tf` and
`tf.compat.v1` a placeholder `estimator` namespace (attributes resolve to empty placeholder classes) so that the import
succeeds. TF-GAN's estimator itself is not usable and not used: the project uses its losses and eval math only.
Importing tensorflow_probability and tensorflow_hub rebinds `tf.compat.v1`, so both are imported first.
"""

import tensorflow as tf
import tensorflow_hub  # noqa: F401  (imported for its side effect on tf.compat.v1; see module docstring)
import tensorflow_probability  # noqa: F401


class _PlaceholderMeta(type):
  """A class whose unknown attributes are further placeholder classes (`tf.estimator.tpu.TPUEstimator`, ...)."""

  def __getattr__(cls, name):
    if name.startswith("__"):
      raise AttributeError(name)
    placeholder = _PlaceholderMeta(name, (object,), {"__module__": __name__})
    setattr(cls, name, placeholder)
    return placeholder


class _EstimatorPlaceholder(metaclass=_PlaceholderMeta):
  """Stands in for the removed `tf.estimator` namespace."""


for _module in (tf, tf.compat.v1):
  if not hasattr(_module, "estimator"):
    _module.estimator = _EstimatorPlaceholder

import tensorflow_gan as tfgan  # noqa: E402

__all__ = ["tfgan"]
