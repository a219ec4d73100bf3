"""Report/CT alignment: volume encoder, gated cross-modal attention, grounding, agreement.

* :mod:`~medmm.fusion.grid` -- the lungs' box at 2 mm and its 8 mm tokens (world positions);
* :mod:`~medmm.fusion.volume_encoder` -- 3D CNN to token features; :mod:`~medmm.fusion.tokens`;
* :mod:`~medmm.fusion.attention` -- text-to-volume multi-head attention with a tanh gate;
* :mod:`~medmm.fusion.model` -- projections, pooled embeddings, region and support heads;
* :mod:`~medmm.fusion.align` -- :class:`ReportAligner`: ``localize(volume, phrase)``, grounding;
* :mod:`~medmm.fusion.agreement` -- report findings vs detections;
* training: :mod:`~medmm.fusion.training_data`, :mod:`~medmm.fusion.train_volume`,
  :mod:`~medmm.fusion.train_alignment`, :mod:`~medmm.fusion.training` (``medmm train alignment``);
  metrics: :mod:`~medmm.fusion.evaluate`.
"""
