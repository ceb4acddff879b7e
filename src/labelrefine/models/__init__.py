"""Models: frozen pretrained encoders (``encoders``), image transforms (``augment``), the
embedding cache (``cache``), and the trainable heads/backbones (``heads``, ``backbones``)."""
