"""One writer per layout: each replays a ``Trainer``'s hooks into the files that writer makes.

=========== =================================================================================
autostock   ``autostock.autostock_fit``: the AutoStock Trader loop (torch ``SummaryWriter``)
puffin      ``puffin.puffin_fit``: the puffin ``TrainingLogger`` (``add_hparams`` at the end)
hf          ``hf.hf_train``: the HuggingFace ``Trainer`` + ``TensorBoardCallback`` (emulated)
lightning   ``lightning.lightning_fit``: Lightning's ``TensorBoardLogger`` (emulated)
keras       ``keras.keras_fit``: the Keras 3 ``TensorBoard`` callback on TF2 (``tf2`` protos)
=========== =================================================================================

The catalogue's notes (``catalogue.LAYOUTS``) say what each one logs. This package imports no
torch; its modules do.
"""
