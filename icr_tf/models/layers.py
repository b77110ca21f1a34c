"""Layers shared by the model families: spectrally normalized dense / conv / embedding, conditional batch norm.

Spectral normalization (Miyato, Kataoka, Koyama, Yoshida, ICLR 2018) is a reparametrization: the layer computes with
    W_SN = W / sigma(W),   sigma(W) = u^T W v  (one power iteration per training call),
where W is the kernel reshaped to a matrix [fan_in, units]. u (and v) are treated as constants (no gradient) and only u
is state: it is updated in training calls only. The gradient flows through sigma(W) into W, as in the paper's Eq. (12).
The trainable kernel is never written by a forward pass. (Keras' own SpectralNormalization layer instead projects the
kernel variable in place; that is a different algorithm.)
"""

import keras
import tensorflow as tf


def _l2_normalize(x, eps=1e-12):
  return x * tf.math.rsqrt(tf.maximum(tf.reduce_sum(tf.square(x)), eps))


class _SpectralNorm(keras.layers.Layer):
  """Holds the power-iteration vector u and computes W / sigma(W) for a kernel of any rank."""

  def _build_u(self, units):
    self.u = self.add_weight(name="sn_u", shape=(1, units), initializer=keras.initializers.RandomNormal(),
                             trainable=False, aggregation="only_first_replica")

  def normalized_kernel(self, training):
    """Returns (kernel / sigma, sigma). Updates u in training calls only."""
    kernel = tf.convert_to_tensor(self.kernel)
    w = tf.reshape(kernel, [-1, kernel.shape[-1]])  # [fan_in, units]
    u = tf.convert_to_tensor(self.u)  # [1, units]
    v = tf.stop_gradient(_l2_normalize(tf.matmul(u, w, transpose_b=True)))  # [1, fan_in]
    u_new = tf.stop_gradient(_l2_normalize(tf.matmul(v, w)))  # [1, units]
    sigma = tf.squeeze(tf.matmul(tf.matmul(v, w), u_new, transpose_b=True))
    if training:
      self.u.assign(u_new)
    return kernel / sigma, sigma


class SNDense(_SpectralNorm):
  """Dense layer with a spectrally normalized kernel: y = x W / sigma(W) + b."""

  def __init__(self, units, use_bias=True, kernel_initializer="glorot_uniform", **kwargs):
    super().__init__(**kwargs)
    self.units = units
    self.use_bias = use_bias
    self.kernel_initializer = keras.initializers.get(kernel_initializer)

  def build(self, input_shape):
    self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units),
                                  initializer=self.kernel_initializer)
    self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros") if self.use_bias else None
    self._build_u(self.units)

  def call(self, inputs, training=None):
    kernel, _ = self.normalized_kernel(bool(training))
    outputs = tf.matmul(inputs, kernel)
    return tf.nn.bias_add(outputs, self.bias) if self.use_bias else outputs

  def compute_output_shape(self, input_shape):
    return (*input_shape[:-1], self.units)


class SNConv2D(_SpectralNorm):
  """2-D convolution (NHWC) with a spectrally normalized kernel; the kernel is read as a [kh*kw*c_in, c_out] matrix."""

  def __init__(self, filters, kernel_size, strides=1, padding="same", use_bias=True,
               kernel_initializer="glorot_uniform", **kwargs):
    super().__init__(**kwargs)
    self.filters = filters
    self.kernel_size = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    self.strides = strides
    self.padding = padding.upper()
    self.use_bias = use_bias
    self.kernel_initializer = keras.initializers.get(kernel_initializer)

  def build(self, input_shape):
    self.kernel = self.add_weight(name="kernel", shape=(*self.kernel_size, input_shape[-1], self.filters),
                                  initializer=self.kernel_initializer)
    self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros") if self.use_bias else None
    self._build_u(self.filters)

  def call(self, inputs, training=None):
    kernel, _ = self.normalized_kernel(bool(training))
    outputs = tf.nn.conv2d(inputs, kernel, strides=self.strides, padding=self.padding)
    return tf.nn.bias_add(outputs, self.bias) if self.use_bias else outputs

  def compute_output_shape(self, input_shape):
    batch, height, width, _ = input_shape
    if self.padding == "SAME":
      height = None if height is None else -(-height // self.strides)
      width = None if width is None else -(-width // self.strides)
    else:
      height = None if height is None else (height - self.kernel_size[0]) // self.strides + 1
      width = None if width is None else (width - self.kernel_size[1]) // self.strides + 1
    return (batch, height, width, self.filters)


class SNEmbedding(_SpectralNorm):
  """Class embedding [num_classes, dim] with spectral normalization, for the projection discriminator."""

  def __init__(self, num_classes, dim, **kwargs):
    super().__init__(**kwargs)
    self.num_classes = num_classes
    self.dim = dim

  def build(self, input_shape):
    self.kernel = self.add_weight(name="kernel", shape=(self.num_classes, self.dim),
                                  initializer="glorot_uniform")
    self._build_u(self.dim)

  def call(self, labels, training=None):
    kernel, _ = self.normalized_kernel(bool(training))
    return tf.gather(kernel, tf.cast(labels, tf.int32))

  def compute_output_shape(self, input_shape):
    return (*input_shape, self.dim)


class ConditionalBatchNorm(keras.layers.Layer):
  """Batch norm whose scale and offset are chosen by class: y = BN(x) * (1 + gamma[label]) + beta[label].

  With num_classes == 0 it is a plain batch norm with a learned scale and offset. `synchronized` computes the batch
  statistics over the global batch under tf.distribute, so N replicas compute what one device would.
  """

  def __init__(self, num_classes=0, momentum=0.9, epsilon=1e-5, synchronized=True, **kwargs):
    super().__init__(**kwargs)
    self.num_classes = num_classes
    conditional = num_classes > 0
    self.bn = keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, center=not conditional,
                                              scale=not conditional, synchronized=synchronized)

  def build(self, input_shape):
    x_shape = input_shape[0] if self.num_classes > 0 else input_shape
    channels = x_shape[-1]
    self.bn.build(x_shape)
    if self.num_classes > 0:
      self.gamma = self.add_weight(name="gamma", shape=(self.num_classes, channels), initializer="zeros")
      self.beta = self.add_weight(name="beta", shape=(self.num_classes, channels), initializer="zeros")

  def call(self, inputs, training=None):
    if self.num_classes == 0:
      return self.bn(inputs, training=training)
    x, labels = inputs
    labels = tf.cast(labels, tf.int32)
    x = self.bn(x, training=training)
    # [B, C] -> [B, 1, ..., 1, C] to broadcast over the spatial axes.
    shape = tf.concat([[-1], tf.ones([x.shape.rank - 2], tf.int32), [x.shape[-1]]], axis=0)
    gamma = tf.reshape(tf.gather(self.gamma, labels), shape)
    beta = tf.reshape(tf.gather(self.beta, labels), shape)
    return x * (1.0 + gamma) + beta

  def compute_output_shape(self, input_shape):
    return input_shape[0] if self.num_classes > 0 else input_shape
