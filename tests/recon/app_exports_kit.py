"""Small exports in other apps' real layouts, written from a ray-cast orbit of known geometry
(recon.sample.scene): Polycam raw data, Record3D .r3d, COLMAP models, Meshroom cameras.sfm.
No test functions here."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import liblzfse
import numpy as np
import pycolmap
from PIL import Image
from scipy.spatial.transform import Rotation

from core.capture import Camera
from recon.sample.scene import distance_to_object, ground_texture, make_camera, orbit_poses, render_view

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # the same pose with the camera's y and z flipped
SIZE = (64, 48)
DEPTH_SIZE = (32, 24)


@dataclass(frozen=True)
class View:
    rgb: np.ndarray  # [H, W, 3] uint8 at SIZE
    depth_m: np.ndarray  # [h, w] float32 z-depth at DEPTH_SIZE, 0 = nothing hit
    camera: Camera  # at SIZE
    c2w: np.ndarray  # [4, 4] OpenCV camera-to-world, metres


def orbit(n: int = 6, depth_size: tuple[int, int] = DEPTH_SIZE,
          elevations_deg: tuple[float, ...] = (25.0,)) -> list[View]:
    camera = make_camera(SIZE)
    small = camera.scaled(*depth_size)
    ground = ground_texture(0)
    views = []
    for c2w in orbit_poses(n, elevations_deg=elevations_deg, radius_m=0.6):
        views.append(View(render_view(camera, c2w, ground=ground).rgb,
                          render_view(small, c2w, ground=ground).depth_m, camera, c2w))
    return views


def jpeg_bytes(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def png16(depth_m: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", np.rint(depth_m * 1000.0).astype(np.uint16))
    assert ok
    return buf.tobytes()


def png8(values: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", values.astype(np.uint8))
    assert ok
    return buf.tobytes()


def confidence_of(depth_m: np.ndarray) -> np.ndarray:
    """ARKit-like levels: 2 where something was hit, 0 elsewhere, 1 on a stripe."""
    conf = np.where(depth_m > 0, 2, 0).astype(np.uint8)
    conf[:, :2] = np.minimum(conf[:, :2], 1)
    return conf


def world_points(depth_m: np.ndarray, camera: Camera, c2w: np.ndarray) -> np.ndarray:
    """Back-projected world points [N, 3] of a depth map (pixel centres at +0.5), hits only."""
    h, w = depth_m.shape
    cam = camera.scaled(w, h)
    v, u = np.mgrid[0:h, 0:w] + 0.5
    z = depth_m
    pts = np.stack([(u - cam.cx) / cam.fx * z, (v - cam.cy) / cam.fy * z, z], -1)[z > 0]
    return pts @ c2w[:3, :3].T + c2w[:3, 3]


def distance_to_scene(points: np.ndarray) -> np.ndarray:
    """Distance from world points to the nearest of the object and the ground plane y = 0."""
    return np.minimum(distance_to_object(points), np.abs(points[:, 1]))


# -- Polycam raw export -------------------------------------------------------------------------


def write_polycam(root: Path, views: list[View], *, confidence_255: bool = False) -> Path:
    kf = root / "keyframes"
    for sub in ("images", "cameras", "depth", "confidence"):
        (kf / sub).mkdir(parents=True, exist_ok=True)
    for i, v in enumerate(views):
        stem = str(1_700_000_000 + 37 * i)  # Polycam names keyframes by a timestamp
        (kf / "images" / f"{stem}.jpg").write_bytes(jpeg_bytes(v.rgb))
        gl = v.c2w @ GL_TO_CV  # ARKit camera axes
        cam = {"blur_score": 100.0 + i, "fx": v.camera.fx, "fy": v.camera.fy, "cx": v.camera.cx,
               "cy": v.camera.cy, "width": v.camera.width, "height": v.camera.height, "timestamp": 1000 + i}
        cam.update({f"t_{r}{c}": float(gl[r, c]) for r in range(3) for c in range(4)})
        (kf / "cameras" / f"{stem}.json").write_text(json.dumps(cam))
        (kf / "depth" / f"{stem}.png").write_bytes(png16(v.depth_m))
        conf = confidence_of(v.depth_m)
        (kf / "confidence" / f"{stem}.png").write_bytes(png8(conf * 127.5 if confidence_255 else conf))
    (root / "mesh_info.json").write_text(json.dumps({"alignmentTransform": np.eye(4).ravel().tolist()}))
    return root


# -- Record3D .r3d -------------------------------------------------------------------------------


def r3d_members(views: list[View]) -> dict[str, bytes]:
    cam = views[0].camera
    k_column_major = [cam.fx, 0.0, 0.0, 0.0, cam.fy, 0.0, cam.cx, cam.cy, 1.0]
    poses = []
    members: dict[str, bytes] = {}
    for i, v in enumerate(views):
        gl = v.c2w @ GL_TO_CV
        q = Rotation.from_matrix(gl[:3, :3]).as_quat()  # x, y, z, w
        poses.append([*map(float, q), *map(float, gl[:3, 3])])
        members[f"rgbd/{i}.jpg"] = jpeg_bytes(v.rgb)
        depth = v.depth_m.astype(np.float32).copy()
        depth[depth == 0] = np.nan  # Record3D writes NaN where LiDAR measured nothing
        members[f"rgbd/{i}.depth"] = liblzfse.compress(depth.tobytes())
        members[f"rgbd/{i}.conf"] = liblzfse.compress(confidence_of(v.depth_m).tobytes())
    meta = {"w": cam.width, "h": cam.height, "dw": DEPTH_SIZE[0], "dh": DEPTH_SIZE[1], "K": k_column_major,
            "fps": 60, "cameraType": 1, "poses": poses, "initPose": poses[0],
            "frameTimestamps": [10.0 + i / 60 for i in range(len(views))]}
    return {"metadata": json.dumps(meta).encode(), **members, "icon": jpeg_bytes(views[0].rgb[:16, :16])}


def write_r3d(path: Path, views: list[View]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in r3d_members(views).items():
            zf.writestr(name, data)
    return path


# -- COLMAP --------------------------------------------------------------------------------------


def heic_bytes(rgb: np.ndarray) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="HEIF", quality=95)
    return buf.getvalue()


def write_colmap(root: Path, views: list[View], *, text: bool = False, old_layout: bool = False,
                 model: str = "PINHOLE", ext: str = ".jpg") -> Path:
    """root/images/*.jpg and root/sparse/0 written by pycolmap; poses as they are (COLMAP is OpenCV)."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    cam = views[0].camera
    params = {"PINHOLE": [cam.fx, cam.fy, cam.cx, cam.cy],
              "SIMPLE_RADIAL": [cam.fx, cam.cx, cam.cy, 0.01]}[model]
    rec = pycolmap.Reconstruction()
    rec.add_camera_with_trivial_rig(pycolmap.Camera(model=model, width=cam.width, height=cam.height,
                                                    params=params, camera_id=1))
    for i, v in enumerate(views, start=1):
        name = f"frame_{i:03d}{ext}"
        (root / "images" / name).write_bytes(heic_bytes(v.rgb) if ext == ".heic" else jpeg_bytes(v.rgb))
        w2c = np.linalg.inv(v.c2w)
        rec.add_image_with_trivial_frame(pycolmap.Image(name=name, camera_id=1, image_id=i),
                                         pycolmap.Rigid3d(w2c[:3, :]))
    out = root / "sparse" / "0"
    out.mkdir(parents=True)
    (rec.write_text if text else rec.write)(str(out))
    if old_layout:
        for name in ("rigs", "frames"):
            (out / f"{name}.{'txt' if text else 'bin'}").unlink()
    return root


# -- Meshroom ------------------------------------------------------------------------------------


def write_meshroom(root: Path, views: list[View], sensor_width_mm: float = 6.17) -> Path:
    """root/cameras.sfm (AliceVision JSON, numbers as strings) and root/images/IMG_000N.jpg."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    cam = views[0].camera
    focal_mm = cam.fx / cam.width * sensor_width_mm
    sfm_views, sfm_poses = [], []
    for i, v in enumerate(views):
        name = f"IMG_{i + 1:04d}.jpg"
        (root / "images" / name).write_bytes(jpeg_bytes(v.rgb))
        view_id = str(100000 + i)
        sfm_views.append({"viewId": view_id, "poseId": view_id, "frameId": str(i), "intrinsicId": "42",
                          "path": f"C:/Users/someone/Pictures/scan/{name}", "width": str(cam.width),
                          "height": str(cam.height), "metadata": {"Make": "Apple"}})
        w2c_rotation = np.linalg.inv(v.c2w)[:3, :3]
        sfm_poses.append({"poseId": view_id, "pose": {"transform": {
            "rotation": [repr(float(x)) for x in w2c_rotation.ravel(order="F")],  # column-major
            "center": [repr(float(x)) for x in v.c2w[:3, 3]]}, "locked": "0"}})
    unposed = {"viewId": "999", "poseId": "999", "intrinsicId": "42", "path": "/tmp/never_posed.jpg",
               "width": str(cam.width), "height": str(cam.height)}
    sfm = {"version": ["1", "2", "4"], "featuresFolders": [], "matchesFolders": [],
           "views": [*sfm_views, unposed],
           "intrinsics": [{"intrinsicId": "42", "width": str(cam.width), "height": str(cam.height),
                           "sensorWidth": repr(sensor_width_mm), "sensorHeight": repr(sensor_width_mm * 0.75),
                           "serialNumber": "-1", "type": "radial3", "initializationMode": "estimated",
                           "initialFocalLength": "-1", "focalLength": repr(focal_mm), "pixelRatio": "1",
                           "pixelRatioLocked": "true",
                           "principalPoint": [repr(cam.cx - cam.width / 2), repr(cam.cy - cam.height / 2)],
                           "distortionParams": ["0", "0", "0"], "locked": "0"}],
           "poses": sfm_poses}
    (root / "cameras.sfm").write_text(json.dumps(sfm, indent=4))
    return root
