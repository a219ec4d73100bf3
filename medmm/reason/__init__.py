"""Reasoning: ontology normalization, clinical guidelines, region GNN and differentials.

Submodules are imported directly (``medmm.reason.ontology``, ``medmm.reason.guidelines``);
the curated surface grows here as the stages land.
"""
