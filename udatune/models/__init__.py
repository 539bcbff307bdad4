"""Segmentation models chosen by name; see `registry` for the contract every model keeps."""

from udatune.models.registry import MODELS, build_model, load_weights, model_names, prepare_model, register_model

__all__ = ["MODELS", "build_model", "load_weights", "model_names", "prepare_model", "register_model"]
