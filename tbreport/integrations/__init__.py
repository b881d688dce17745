"""Callbacks that stop training on a finding, as EarlyStopping would, for three frameworks.

Each module imports its framework and fails with a clear ImportError when it is not installed;
``tbreport`` itself never imports them:

- ``tbreport.integrations.keras.TbreportCallback`` (Keras 3 or ``tf.keras``)
- ``tbreport.integrations.lightning.TbreportCallback`` (``lightning`` or ``pytorch_lightning``)
- ``tbreport.integrations.transformers.TbreportCallback`` (the Hugging Face ``Trainer``)

All three poll a :class:`tbreport.Monitor` at the end of every epoch, log each new finding on the
``tbreport`` logger, and stop training on the first finding at or above ``stop_on``.
"""
