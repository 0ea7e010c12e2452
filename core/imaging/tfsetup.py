"""Import TensorFlow/Keras quietly and once. Every core module that needs them imports from here."""

from __future__ import annotations

import logging
import os
import warnings

from core.config import luciddx_home

# TensorFlow's C++ banner and oneDNN notices go to stderr on import; they are noise for a clinician.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# Keras reads and writes ~/.keras/keras.json on import; a user's floatx or image_data_format there
# would change our models' behaviour, and nothing may be written outside LUCIDDX_HOME.
os.environ.setdefault("KERAS_HOME", str(luciddx_home() / "keras"))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel(logging.ERROR)
# Retracing notices fire when a page predicts single images of varying batch sizes: harmless.
logging.getLogger("tensorflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", module=r"tf_keras_vis(\..*)?")
warnings.filterwarnings("ignore", message=r".*tf_keras_vis.*")

__all__ = ["tf", "keras"]
