"""Pieces shared by the model families: inputs with or without labels, conditional BN, the projection head."""

import keras

from icr_tf.models import layers


def model_inputs(arch, first_shape, first_name):
  first = keras.Input(first_shape, name=first_name)
  labels = keras.Input((), dtype="int32", name="labels") if arch.conditional else None
  return first, labels


def bn(arch, x, labels, name):
  cbn = layers.ConditionalBatchNorm(arch.num_classes, name=name)
  return cbn([x, labels]) if arch.conditional else cbn(x)


def image_inputs(arch):
  """The discriminator's inputs: images [B, R, R, C] (and labels [B])."""
  return model_inputs(arch, (arch.resolution, arch.resolution, arch.channels), "images")


def generator_output(arch, x, z, labels, name):
  """The generators' last layer, conv3x3 to C channels and tanh, and the model from (z, labels) to it."""
  x = keras.layers.Conv2D(arch.channels, 3, padding="same", name="conv_out")(x)
  images = keras.layers.Activation("tanh", dtype="float32")(x)
  return make_model(arch, z, labels, images, name)


def make_model(arch, first, labels, outputs, name):
  inputs = [first, labels] if arch.conditional else first
  return keras.Model(inputs, outputs, name=name)


def projection_logits(arch, features, labels, name):
  """logit = dense(h) + <embed(y), h> for a conditional D; dense(h) otherwise. Returns [B]."""
  logits = layers.SNDense(1, name=f"{name}_dense")(features)
  if arch.conditional:
    embedded = layers.SNEmbedding(arch.num_classes, features.shape[-1], name=f"{name}_embed")(labels)
    logits = logits + keras.ops.sum(embedded * features, axis=-1, keepdims=True)
  return keras.ops.squeeze(logits, axis=-1)


def call_model(model, arch, inputs, labels, training):
  """Calls a G or D built here with or without labels, as the architecture requires."""
  return model([inputs, labels] if arch.conditional else inputs, training=training)
