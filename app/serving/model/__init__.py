"""The published model, loaded once per process and scored with onnxruntime.

Public module: ``ranking`` (``load_model``, ``LoadedModel``); ``two_stage`` is the candidate
retrieval and ranking of the large-catalogue family behind the same ``LoadedModel``.
"""
