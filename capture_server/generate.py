"""What a phone may ask of a finished result besides processing: a model made from a prompt (a new
capture) or from a capture's photo, and a video of a capture's model.

Every field is checked here (type, range, length) because the server queues the jobs without
loading the stages (it never imports generation): a bad value is one 400 naming the field, and
anything not listed is refused. The jobs are core.submit's ``create`` method job and
core.generated's video job, the same the CLI and the desktop queue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from capture_server.errors import RequestError
from capture_server.jobs_link import JobLink
from core.generated import create_overrides, new_generated_capture, video_job
from core.submit import method_job
from core.workspace import Workspace

MAX_PROMPT = 1000
DETAILS = ("preview", "reduced", "medium", "full")
VIDEO_PATHS = ("turntable", "capture", "fly")
# phone field -> (create stage option, kind, low, high)
CREATE_FIELDS: dict[str, tuple[str, str, float, float]] = {
    "size": ("height_m", "number", 0.01, 100.0),
    "refine_steps": ("refine_steps", "int", 0, 10_000),
    "steps": ("steps", "int", 1, 1000),
    "seed": ("seed", "int", 0, 2**32 - 1),
    "grid": ("grid_size", "int", 16, 256),
}
VIDEO_FIELDS: dict[str, tuple[str, str, float, float]] = {
    "seconds": ("seconds", "number", 0.1, 600.0),
    "fps": ("fps", "number", 1.0, 120.0),
    "width": ("width", "int", 16, 3840),
    "height": ("height", "int", 16, 2160),
    "elevation": ("elevation_deg", "number", -89.0, 89.0),
}


def _object(body: Any) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise RequestError("expected a JSON object", "body")
    return body


def _refuse_unknown(body: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(str(k)[:40] for k in body if k not in known)
    if unknown:
        raise RequestError(f"unknown field (known: {', '.join(sorted(known))})", unknown[0])


def _checked(body: Mapping[str, Any], fields: Mapping[str, tuple[str, str, float, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (option, kind, lo, hi) in fields.items():
        if name not in body:
            continue
        value = body[name]
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
        else:
            ok = is_number and (isinstance(value, int) or math.isfinite(value)) and lo <= value <= hi
        if not ok:
            what = "a whole number" if kind == "int" else "a number"
            raise RequestError(f"expected {what} from {lo:g} to {hi:g}", name)
        out[option] = float(value) if kind == "number" else int(value)
    return out


def _text(body: Mapping[str, Any], name: str, limit: int) -> str:
    value = body.get(name, "")
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise RequestError(f"expected text of at most {limit} characters", name)
    return value.strip()


def _detail(body: Mapping[str, Any]) -> str:
    detail = body.get("detail", "medium")
    if detail not in DETAILS:
        raise RequestError(f"must be one of {', '.join(DETAILS)}", "detail")
    return str(detail)


class GenerateService:
    def __init__(self, workspace: Workspace, jobs: JobLink | None) -> None:
        self.workspace = workspace
        self.jobs = jobs

    def _submit(self, capture_id: str, steps: list[Any]) -> dict[str, Any]:
        if self.jobs is None:
            raise RequestError("this server has no job queue", "jobs")
        return self.jobs.submit(capture_id, steps)

    def create_from_prompt(self, body: Any) -> dict[str, Any]:
        """A new capture holding a model of ``prompt``: {capture_id, job}."""
        body = _object(body)
        _refuse_unknown(body, {"prompt", "name", "detail", *CREATE_FIELDS})
        prompt = _text(body, "prompt", MAX_PROMPT)
        if not prompt:
            raise RequestError("say what to make", "prompt")
        name = _text(body, "name", 200) or prompt
        options = _checked(body, CREATE_FIELDS)
        detail = _detail(body)
        capture = new_generated_capture(self.workspace, name)
        steps = method_job(capture, "create", detail, create_overrides(prompt, options))
        job = self._submit(capture.id, steps)
        return {"capture_id": capture.id, "job": job}

    def create_for_capture(self, capture_id: str, body: Any) -> dict[str, Any]:
        """A model of the capture's photo (or of a prompt), published to its exports/."""
        body = _object(body)
        _refuse_unknown(body, {"prompt", "frame", "detail", *CREATE_FIELDS})
        capture = self.workspace.capture(capture_id)
        options = _checked(body, CREATE_FIELDS)
        frame = _text(body, "frame", 200)
        if frame:
            options["frame"] = frame
        prompt = _text(body, "prompt", MAX_PROMPT)
        if not prompt and not any(f.image for f in capture.load().frames):
            raise RequestError("the capture has no photo yet: give a prompt, or finish its upload first",
                               "prompt")
        steps = method_job(capture, "create", _detail(body), create_overrides(prompt, options))
        return {"capture_id": capture.id, "job": self._submit(capture.id, steps)}

    def video_for_capture(self, capture_id: str, body: Any) -> dict[str, Any]:
        """A clip of the capture's model along a camera path, published as exports/clip.mp4."""
        body = _object(body)
        _refuse_unknown(body, {"path", *VIDEO_FIELDS})
        capture = self.workspace.capture(capture_id)
        options = _checked(body, VIDEO_FIELDS)
        path = body.get("path", "turntable")
        if path not in VIDEO_PATHS:
            raise RequestError(f"must be one of {', '.join(VIDEO_PATHS)}", "path")
        for side in ("width", "height"):
            if side in options and options[side] % 2:
                raise RequestError("must be even (H.264)", side)
        job = self._submit(capture.id, video_job({"path": path, **options}))
        return {"capture_id": capture.id, "job": job}
