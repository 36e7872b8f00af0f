"""What a stage needs from the machine, declared on its StageSpec (``resources=Resources(...)``).

``gpu=True``: the stage uses the GPU when there is one; it gets ``ctx.device`` from the settings
and runs only while holding the machine-wide GPU slot (core.gpu_slot). The figures are what an
executor (core.executor) schedules by; the local one runs one stage at a time per worker.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from core.errors import ConfigError


@dataclass(frozen=True)
class Resources:
    gpu: bool = False
    gpu_memory_gb: float = 0.0  # at least this much free GPU memory
    ram_gb: float = 0.0  # peak host memory
    cpus: int = 1  # cores it keeps busy

    def __post_init__(self) -> None:
        for name in ("gpu_memory_gb", "ram_gb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value < 0:
                raise ConfigError(f"expected a finite number >= 0, got {value!r}", f"resources.{name}")
        if isinstance(self.cpus, bool) or not isinstance(self.cpus, int) or self.cpus < 1:
            raise ConfigError(f"expected a positive integer, got {self.cpus!r}", "resources.cpus")
        if self.gpu_memory_gb and not self.gpu:
            raise ConfigError("GPU memory for a stage that does not use the GPU", "resources.gpu_memory_gb")

    def to_json(self) -> dict[str, float | int | bool]:
        return dataclasses.asdict(self)
