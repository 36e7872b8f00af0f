// Guided mode of the phone web capture page: a live viewfinder from the camera stream, an orbit
// ring that fills sector by sector from the phone's orientation as the user walks around the
// object, hints from the stream (exposure, sharpness) and from the motion ("too fast"), and
// photos taken from the stream with the orientation of each shot.
//
// Orientation: W3C DeviceOrientation angles rotate the device frame (x right, y up the screen,
// z out of the screen) into the earth frame (x east, y north, z up) as Rz(alpha) Rx(beta)
// Ry(gamma). The back camera looks along -z; the phone stands on the other side of the object.
// capture_server/orientation.py computes the same directions from the uploaded readings.
"use strict";

(function () {
  const SECTORS = 12;
  const BAND_EDGES = [-90, -15, 15, 45, 90]; // degrees of elevation, as the server's coverage
  const PASSES = [2, 3]; // the bands to go round: 15..45 degrees up, then 45..90 (from above)
  const ANALYSE_MS = 250;
  const SENSOR_WAIT_MS = 2000;
  const TOO_FAST_DEG_S = 60;
  const STILL_AFTER_MS = 300; // no orientation event for this long: the phone is not turning
  const DARK_MEAN = 45;
  const BRIGHT_MEAN = 220;
  const CLIPPED_SHARE = 0.25;
  const BLURRY_LAPLACIAN_VAR = 25;
  const CHECK_W = 96; // the small canvas the stream is checked on
  const CHECK_H = 72;
  const rad = (deg) => (deg * Math.PI) / 180;
  const deg = (r) => (r * 180) / Math.PI;

  function cameraDirection(o) {
    const a = rad(o.alpha), b = rad(o.beta), g = rad(o.gamma);
    return [
      -Math.cos(a) * Math.sin(g) - Math.sin(a) * Math.sin(b) * Math.cos(g), // east
      -Math.sin(a) * Math.sin(g) + Math.cos(a) * Math.sin(b) * Math.cos(g), // north
      -Math.cos(b) * Math.cos(g), // up
    ];
  }

  function viewAzimuth(o) { // from the object to the phone, degrees clockwise from the reference
    const d = cameraDirection(o);
    return (((deg(Math.atan2(d[0], d[1])) + 180) % 360) + 360) % 360;
  }

  function viewElevation(o) { return -deg(Math.asin(Math.max(-1, Math.min(1, cameraDirection(o)[2])))); }

  function sectorOf(azimuth) { return Math.min(SECTORS - 1, Math.floor(azimuth / (360 / SECTORS))); }

  function bandOf(elevation) {
    for (let i = BAND_EDGES.length - 2; i >= 0; i--) if (elevation >= BAND_EDGES[i]) return i;
    return 0;
  }

  function round2(x) { return Math.round(x * 100) / 100; }

  // What the server accepts (capture_server/orientation.py): finite numbers in range.
  function reading(event) {
    const ok = (v) => typeof v === "number" && isFinite(v);
    if (!ok(event.alpha) || !ok(event.beta) || !ok(event.gamma)) return null;
    const heading = ok(event.webkitCompassHeading) && event.webkitCompassHeading >= 0
      ? round2(((event.webkitCompassHeading % 360) + 360) % 360) : null;
    return {
      alpha: round2(((event.alpha % 360) + 360) % 360),
      beta: round2(Math.max(-180, Math.min(180, event.beta))),
      gamma: round2(Math.max(-90, Math.min(90, event.gamma))),
      heading: heading,
    };
  }

  // Mean brightness, share of clipped pixels and variance of the Laplacian (sharpness) of a frame.
  function frameStats(ctx) {
    const px = ctx.getImageData(0, 0, CHECK_W, CHECK_H).data;
    const gray = new Float32Array(CHECK_W * CHECK_H);
    let sum = 0, clipped = 0;
    for (let i = 0; i < gray.length; i++) {
      const y = 0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2];
      gray[i] = y;
      sum += y;
      if (y >= 250) clipped++;
    }
    let n = 0, s = 0, s2 = 0;
    for (let y = 1; y < CHECK_H - 1; y++) {
      for (let x = 1; x < CHECK_W - 1; x++) {
        const i = y * CHECK_W + x;
        const lap = 4 * gray[i] - gray[i - 1] - gray[i + 1] - gray[i - CHECK_W] - gray[i + CHECK_W];
        n++; s += lap; s2 += lap * lap;
      }
    }
    return { mean: sum / gray.length, clipped: clipped / gray.length, sharpness: s2 / n - (s / n) * (s / n) };
  }

  function wedgePath(index, inner, outer) {
    const step = (2 * Math.PI) / SECTORS, gap = 0.03;
    const a0 = index * step + gap, a1 = (index + 1) * step - gap;
    const p = (r, a) => (r * Math.sin(a)).toFixed(2) + " " + (-r * Math.cos(a)).toFixed(2);
    return "M" + p(outer, a0) + " A" + outer + " " + outer + " 0 0 1 " + p(outer, a1)
      + " L" + p(inner, a1) + " A" + inner + " " + inner + " 0 0 0 " + p(inner, a0) + " Z";
  }

  class GuidedCamera {
    // els: {box, video, ring, hint, shutter, summary}; onPhoto(file, orientation or null)
    constructor(els, onPhoto) {
      this.els = els;
      this.onPhoto = onPhoto;
      this.stream = null;
      this.latest = null; // the last orientation reading
      this.lastEventAt = 0;
      this.lastDirection = null;
      this.speed = 0; // degrees per second the camera turns
      this.sensor = "waiting";
      this.shots = []; // {sector, band}
      // Photo names are unique across page loads: a capture resumed after a reload keeps its
      // earlier photos, and the server refuses a second file of the same name.
      this.session = Date.now().toString(36);
      this.timer = null;
      this.stats = null;
      this.check = document.createElement("canvas");
      this.check.width = CHECK_W;
      this.check.height = CHECK_H;
      this.onOrientation = this.onOrientation.bind(this);
      this.buildRing();
      this.setState("camera", "off");
      this.setState("sensor", this.sensor);
      this.setState("shots", "0");
    }

    setState(key, value) { this.els.box.dataset[key] = value; } // for styling and tests

    buildRing() {
      const ns = "http://www.w3.org/2000/svg";
      this.wedges = [];
      this.els.ring.replaceChildren();
      const backdrop = document.createElementNS(ns, "circle");
      backdrop.setAttribute("r", "49");
      backdrop.setAttribute("class", "backdrop");
      this.els.ring.append(backdrop);
      for (let i = 0; i < SECTORS; i++) {
        const path = document.createElementNS(ns, "path");
        path.setAttribute("d", wedgePath(i, 34, 47));
        path.setAttribute("class", "sector");
        this.els.ring.append(path);
        this.wedges.push(path);
      }
      this.marker = document.createElementNS(ns, "circle");
      this.marker.setAttribute("r", "4");
      this.marker.setAttribute("class", "here");
      this.els.ring.append(this.marker);
    }

    // Called from the tap that starts guided capture: iOS asks for motion access only on a gesture.
    start() {
      let permission = Promise.resolve("granted");
      const DOE = window.DeviceOrientationEvent;
      if (DOE && typeof DOE.requestPermission === "function") {
        permission = DOE.requestPermission().catch(() => "denied");
      }
      this.setState("camera", "starting");
      const media = navigator.mediaDevices && navigator.mediaDevices.getUserMedia
        ? navigator.mediaDevices.getUserMedia({
          audio: false,
          video: { facingMode: { ideal: "environment" }, width: { ideal: 1920 }, height: { ideal: 1440 } },
        })
        : Promise.reject(new Error("this browser gives no camera stream here (it needs HTTPS)"));
      return Promise.all([permission, media.then((s) => s, (e) => e)]).then(([perm, stream]) => {
        if (stream instanceof Error || !(stream instanceof MediaStream)) {
          this.setState("camera", "unavailable");
          throw stream instanceof Error ? stream : new Error("no camera stream");
        }
        this.stream = stream;
        this.els.video.srcObject = stream;
        this.els.video.play().catch(() => { /* autoplay of a muted stream; shown once it plays */ });
        if (perm === "granted") window.addEventListener("deviceorientation", this.onOrientation);
        this.startedAt = performance.now();
        this.setState("camera", "live");
        this.timer = setInterval(() => this.tick(), ANALYSE_MS);
        this.tick();
      });
    }

    stop() {
      window.removeEventListener("deviceorientation", this.onOrientation);
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
      if (this.stream) for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
      this.els.video.srcObject = null;
      if (this.els.box.dataset.camera === "live" || this.els.box.dataset.camera === "starting") {
        this.setState("camera", "off");
      }
    }

    onOrientation(event) {
      const r = reading(event);
      if (!r) return;
      const now = performance.now();
      const dir = cameraDirection(r);
      if (this.lastDirection && now > this.lastEventAt) {
        const dot = dir[0] * this.lastDirection[0] + dir[1] * this.lastDirection[1] + dir[2] * this.lastDirection[2];
        const turned = deg(Math.acos(Math.max(-1, Math.min(1, dot))));
        const rate = turned / ((now - this.lastEventAt) / 1000);
        this.speed = 0.7 * this.speed + 0.3 * Math.min(rate, 1000);
      }
      this.lastDirection = dir;
      this.lastEventAt = now;
      this.latest = r;
      this.setState("alpha", String(r.alpha));
      if (this.sensor !== "orientation" && this.shots.length === 0) {
        this.sensor = "orientation";
        this.setState("sensor", this.sensor);
      }
      this.render();
    }

    target() {
      const done = (band) => new Set(this.shots.filter((s) => s.band === band).map((s) => s.sector)).size >= SECTORS;
      return PASSES.find((band) => !done(band));
    }

    tick() {
      const now = performance.now();
      if (this.sensor === "waiting" && now - this.startedAt > SENSOR_WAIT_MS) {
        this.sensor = "none"; // no motion sensor (or no permission): the ring counts photos
        this.setState("sensor", this.sensor);
      }
      if (now - this.lastEventAt > STILL_AFTER_MS) this.speed = 0;
      const video = this.els.video;
      if (video.videoWidth > 0) {
        const ctx = this.check.getContext("2d", { willReadFrequently: true });
        ctx.drawImage(video, 0, 0, CHECK_W, CHECK_H);
        this.stats = frameStats(ctx);
        this.setState("brightness", String(Math.round(this.stats.mean)));
        this.setState("sharpness", String(Math.round(this.stats.sharpness)));
      }
      this.render();
    }

    here() { // {sector, band} of the phone now, or of the next photo without a sensor
      const band = this.target() === undefined ? PASSES[PASSES.length - 1] : this.target();
      if (this.sensor === "orientation" && this.latest) {
        return { sector: sectorOf(viewAzimuth(this.latest)), band: bandOf(viewElevation(this.latest)),
          elevation: viewElevation(this.latest) };
      }
      const inBand = this.shots.filter((s) => s.band === band).length;
      return { sector: inBand % SECTORS, band: band, elevation: null };
    }

    hint() {
      const s = this.stats;
      const target = this.target();
      const here = this.here();
      if (this.els.box.dataset.camera !== "live") return "";
      if (!s) return "Starting the camera…";
      if (s.mean < DARK_MEAN) return "Too dark: add light or move to a brighter place.";
      if (s.mean > BRIGHT_MEAN || s.clipped > CLIPPED_SHARE) return "Too bright: avoid direct light on the object.";
      if (this.speed > TOO_FAST_DEG_S) return "Too fast: move slower.";
      if (s.sharpness < BLURRY_LAPLACIAN_VAR) return "Hold still (the picture is blurry), or move closer.";
      if (target === undefined) return "All around, twice: send the photos.";
      if (this.sensor !== "orientation") {
        return "Take a photo, then walk about a twelfth of the way around the object.";
      }
      if (here.elevation > BAND_EDGES[target + 1]) return "Move lower: look at the object less from above.";
      if (here.elevation < BAND_EDGES[target]) return "Move higher: look down at the object a little.";
      const seen = this.shots.some((x) => x.band === here.band && x.sector === here.sector);
      if (seen) return "This side is done: walk on around the object.";
      return target === PASSES[0] ? "Take a photo." : "Second round, from higher up: take a photo.";
    }

    render() {
      const target = this.target() === undefined ? PASSES[PASSES.length - 1] : this.target();
      const filled = new Set(this.shots.filter((s) => s.band === target).map((s) => s.sector));
      this.wedges.forEach((w, i) => w.setAttribute("class", filled.has(i) ? "sector seen" : "sector"));
      const here = this.here();
      const a = ((here.sector + 0.5) * 2 * Math.PI) / SECTORS;
      this.marker.setAttribute("cx", (40.5 * Math.sin(a)).toFixed(2));
      this.marker.setAttribute("cy", (-40.5 * Math.cos(a)).toFixed(2));
      this.marker.setAttribute("visibility", this.sensor === "orientation" ? "visible" : "hidden");
      const hint = this.hint();
      if (this.els.hint.textContent !== hint) this.els.hint.textContent = hint;
      const rounds = target === PASSES[0] ? "first round" : "second round, from above";
      this.els.summary.textContent = this.shots.length + " photo(s); " + filled.size + " of " + SECTORS
        + " sides on the " + rounds + (this.sensor === "none" ? " (no motion sensor: counted by photos)" : "") + ".";
      this.setState("filled", String(filled.size));
    }

    // A photo from the stream at full resolution, with the orientation at the moment of the tap.
    shoot() {
      const video = this.els.video;
      if (!this.stream || video.videoWidth === 0) return Promise.reject(new Error("the camera is not ready"));
      const orientation = this.sensor === "orientation" && this.latest
        ? Object.assign({}, this.latest, { t: Date.now() }) : null;
      const where = this.here();
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      canvas.getContext("2d").drawImage(video, 0, 0);
      return new Promise((resolve, reject) => {
        canvas.toBlob((blob) => {
          if (!blob) { reject(new Error("the photo could not be encoded")); return; }
          const number = String(this.shots.length + 1).padStart(3, "0");
          const name = "guided-" + this.session + "-" + number + ".jpg";
          const file = new File([blob], name, { type: "image/jpeg", lastModified: Date.now() });
          this.shots.push({ sector: where.sector, band: where.band });
          this.setState("shots", String(this.shots.length));
          this.render();
          this.onPhoto(file, orientation);
          resolve(file);
        }, "image/jpeg", 0.92);
      });
    }
  }

  window.ScanBridgeGuided = { GuidedCamera: GuidedCamera, viewAzimuth: viewAzimuth, viewElevation: viewElevation };
})();
