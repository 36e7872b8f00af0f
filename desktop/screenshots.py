"""Render each main view of the app into PNGs (for docs/screenshots/), offscreen or under Xvfb.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m desktop.screenshots --out docs/screenshots
    QT_QPA_PLATFORM=offscreen .venv/bin/python -m desktop.screenshots   # the same, without Xvfb

It builds a throw-away workspace: the bundled sample (processed to a textured model by a real job), and, when
../shared/data is there, two real photo sets (OpenSfM's iPhone photos, BSD-2), pairs two phones
with the real server on loopback, and shows a phone advertised over mDNS.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QWidget

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LOOPBACK = ["127.0.0.1"]


def spin(app: QApplication, until: Callable[[], bool] | float, timeout_s: float = 300.0) -> bool:
    """Process events until ``until()`` holds (or for ``until`` seconds)."""
    deadline = time.monotonic() + (until if isinstance(until, float) else timeout_s)
    while time.monotonic() < deadline:
        app.processEvents()
        if callable(until) and until():
            return True
        time.sleep(0.02)
    return not callable(until) or until()


def _save(widget: QWidget, path: Path) -> None:
    widget.grab().save(str(path))
    print(f"wrote {path}", flush=True)


def build_workspace(root: Path) -> dict[str, str]:
    """Captures for the shots: the sample (metric), and real photo sets when available."""
    from core.workspace import Workspace
    from recon.ingest.api import ingest
    from recon.sample.paths import bundled_sample_dir

    ws = Workspace(root)
    ids = {}
    lund = SHARED / "opensfm-iphone4s" / "lund" / "images"
    berlin = SHARED / "opensfm-iphone4s" / "berlin" / "images"
    if berlin.is_dir():
        ids["berlin"] = ingest(berlin, ws, name="Berlin Cathedral facade").id
    if lund.is_dir():
        ids["lund"] = ingest(lund, ws, name="Lund street walk").id
    sample = ingest(bundled_sample_dir(), ws, name="Garden figure")
    # The bundled sample is rendered in metres (its nerfstudio export does not say so).
    sample.save(dataclasses.replace(sample.load(), scale="metric"))
    ids["sample"] = sample.id
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m desktop.screenshots")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--size", default="1440x900", help="window size (default 1440x900)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="scanbridge-shots-") as tmp:
        ids = build_workspace(Path(tmp) / "ws")
        shoot(app, Path(tmp) / "ws", ids, args.out, (width, height))
    return 0


def shoot(app: QApplication, root: Path, ids: dict[str, str], out: Path, size: tuple[int, int]) -> None:
    from zeroconf import IPVersion, Zeroconf

    from capture_server.discovery import phone_service_info, register_phone
    from core.jobs import Step
    from desktop.app import build_app
    from desktop.viewer.scene import ViewMesh
    from recon.fusion.frames import read_frame
    from recon.fusion.tsdf import TSDFFusion, preset

    desktop = build_app(root, server_host="127.0.0.1", server_port=0, mdns=True, mdns_interfaces=LOOPBACK)
    window, services, notifier = desktop.window, desktop.services, desktop.ctx.notifier
    window.resize(*size)
    window.show()
    phone_zc = Zeroconf(interfaces=LOOPBACK, ip_version=IPVersion.V4Only)
    try:
        spin(app, lambda: services.server_url is not None, 60)
        register_phone(phone_zc, phone_service_info("Ana's iPhone 15 Pro", 4242, LOOPBACK,
                                                    {"model": "iPhone 15 Pro", "app": "1.0"}))
        fused = services.process(ids["sample"], "fusion", "medium")  # fusion, mesh (textured), export
        spin(app, lambda: services.job(fused.id).ended_state, 900)

        def clear_notices() -> None:
            notifier.clear()
            spin(app, 0.3)

        window.show_panel("Library")
        spin(app, lambda: window.library.thumbnail_count() == len(ids), 60)
        clear_notices()
        window.library.select(ids["sample"])
        spin(app, 0.5)
        clear_notices()
        _save(window, out / "library.png")

        window.open_capture(ids["sample"])
        view = window.capture_view
        spin(app, lambda: view.details is not None and not view.viewer.busy, 120)
        spin(app, 1.0)
        clear_notices()
        _save(window, out / "capture.png")

        window.open_result(ids["sample"])
        viewer = window.result_view.viewer
        spin(app, lambda: bool(viewer.scene.meshes) and not viewer.busy, 120)
        viewer.set_camera(viewer.camera.orbited(-25.0, 10.0))
        spin(app, lambda: not viewer.busy, 60)
        clear_notices()
        _save(window, out / "result.png")

        if "lund" in ids:  # a real SfM job (29 photos, about a minute) running while the shot is taken
            services.submit(ids["lund"], [Step("poses")])
        window.show_panel("Jobs")
        jobs = window.jobs
        spin(app, lambda: any(j.state == "running" for j in jobs.jobs) or "lund" not in ids, 120)
        spin(app, lambda: any(j.state == "running" and (j.progress.overall or 0) > 0.15 for j in jobs.jobs)
             or "lund" not in ids, 120)
        jobs.select_job(fused.id)
        spin(app, 1.5)
        _save(window, out / "jobs.png")

        codes = [services._device_store().new_code()[0] for _ in range(2)]
        store = services._device_store()
        phone = store.redeem(codes[0], "Ana's iPhone 15 Pro")
        old = store.redeem(codes[1], "Test iPad")
        services.revoke_device(old.device.id)
        services.rename_device(phone.device.id, "Ana's iPhone (studio)")
        window.show_panel("Devices")
        spin(app, lambda: window.devices.phone_list.count() > 0 and
             "Ana" in window.devices.phone_list.item(0).text(), 30)
        window.devices.refresh()
        clear_notices()
        _save(window, out / "devices.png")
        dialog = window.devices.open_pairing()
        spin(app, 0.5)
        if dialog is not None:
            _save(dialog, out / "pairing.png")
            dialog.reject()

        window.show_panel("Live capture")
        capture = services.capture(ids["sample"])
        fusion = TSDFFusion(preset("object", voxel_size_m=0.006))
        frames = [f for f in capture.load().frames if f.depth and f.pose][:14]
        for frame in frames:
            arrays = read_frame(capture, frame)
            fusion.add_frame(arrays.depth, frame.camera, arrays.c2w, arrays.color, frame=frame.id)
        mesh = fusion.extract_mesh()
        window.live_feed.mesh_updated.emit(ViewMesh(mesh.vertices, mesh.faces, mesh.colors), len(frames))
        spin(app, lambda: window.live.viewer.last_render is not None and not window.live.viewer.busy, 60)
        clear_notices()
        _save(window, out / "live.png")

        settings = services.settings()
        services.save_settings(dataclasses.replace(settings, model_paths={
            "mcc": "~/models/mcc/co3dv2_all_categories.pth",
            "depth_diffusion": "stabilityai/stable-diffusion-2-depth"}))
        window.settings.load()
        window.show_panel("Settings")
        spin(app, 0.5)
        clear_notices()
        _save(window, out / "settings.png")
    finally:
        phone_zc.close()
        desktop.close()


if __name__ == "__main__":
    sys.exit(main())
