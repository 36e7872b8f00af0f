"""The registry of user-chosen weights, presets, licences, and loading with settings from the machine."""

from generation.models.presets import DEPTH_ESTIMATOR, MODELS, PRESETS, ModelSpec, Preset
from generation.models.registry import LicenceLedger, ModelRegistry, ResolvedModel
from generation.models.runtime import RuntimeSettings, choose_runtime, refuse_full_size_on_cpu

__all__ = [
    "DEPTH_ESTIMATOR", "MODELS", "PRESETS", "LicenceLedger", "ModelRegistry", "ModelSpec", "Preset",
    "ResolvedModel", "RuntimeSettings", "choose_runtime", "refuse_full_size_on_cpu",
]
