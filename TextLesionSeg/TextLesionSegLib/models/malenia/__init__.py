"""Malenia: 3D lesion segmentation by mask-attribute alignment (ICLR 2025), implemented from the paper.

Modules by concern: ``config`` (hyper-parameters, JSON), ``backbone`` (image encoder-decoder giving
F1..F4), ``decoder`` (mask tokens + 3 transformer blocks), ``cmki`` (cross-modal knowledge injection),
``losses``/``matching`` (MP-NCE, Dice/BCE, Hungarian), ``model`` (the network and its training loss),
``segmenter`` (the pipeline's ``LesionSegmenter``), ``training`` (the trainer's model module).
Nothing here is imported at package import: torch stays lazy for Slicer.
"""
