"""The model layer: the manifest of shipped models, the cascade that runs them, and its
backends (LiteRT on the CPU; Keras, the only module here that imports TensorFlow)."""
