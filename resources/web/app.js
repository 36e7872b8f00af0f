// The phone web capture page: pair, pick a mode, take or choose photos/video, upload them
// resumably with tus-js-client (window.tus), finish the capture, follow coverage and the job,
// then open the result in AR Quick Look through a share link. Plain DOM, no framework.
// Guided mode's camera, ring and hints are in guided.js; each guided photo's orientation goes
// with its upload (tus metadata "orientation", docs/protocol.md).
"use strict";

(function () {
  const TOKEN_KEY = "scanbridge.token";
  const PENDING_KEY = "scanbridge.pendingCapture"; // a capture whose uploads may still be resumed
  const CHUNK_BYTES = 8 * 1024 * 1024;
  const POLL_MS = 2000;
  const LIVE_POLL_MS = 2000; // how often the page looks for a live scan streaming from another device
  const $ = (id) => document.getElementById(id);

  let token = localStorage.getItem(TOKEN_KEY);
  let chosenFiles = [];
  let pollTimer = null;
  let guided = null; // the guided camera (guided.js), once the page has started
  const photoOrientations = new Map(); // a guided photo -> its device orientation when taken

  // -- small helpers ---------------------------------------------------------------------------

  function show(id, visible) { $(id).hidden = !visible; }

  function say(text, ok) {
    const box = $("message");
    box.textContent = text;
    box.className = ok ? "ok" : "";
    box.hidden = !text;
  }

  function setStage(stage) { document.body.dataset.stage = stage; } // for styling and tests

  async function api(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers = Object.assign({ "Accept": "application/json" }, opts.headers);
    if (token) opts.headers["Authorization"] = "Bearer " + token;
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      delete opts.json;
    }
    const response = await fetch(path, opts);
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401 && path !== "/v1/pair") {
      forget("This browser is no longer paired. Pair it again with a new code.");
    }
    if (!response.ok) {
      const reason = body && body.error ? body.error : response.status + " " + response.statusText;
      throw new Error(reason);
    }
    return body;
  }

  function guessDeviceName() {
    const ua = navigator.userAgent;
    const kind = /iPhone/.test(ua) ? "iPhone" : /iPad/.test(ua) ? "iPad" : /Android/.test(ua) ? "Android phone" : "browser";
    return "Web page on " + kind;
  }

  function safeName(name) {
    // What the server accepts in raw/: one plain part, no leading dot, no odd characters.
    const cleaned = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "");
    return (cleaned || "file").slice(0, 120);
  }

  function uniqueNames(files) {
    const used = new Map();
    return files.map((file) => {
      const base = safeName(file.name);
      const count = (used.get(base) || 0) + 1;
      used.set(base, count);
      if (count === 1) return base;
      const dot = base.lastIndexOf(".");
      return dot > 0 ? base.slice(0, dot) + "-" + count + base.slice(dot) : base + "-" + count;
    });
  }

  function kindOf(file) {
    if (file.type.startsWith("image/")) return "image";
    if (file.type.startsWith("video/")) return "video";
    if (/zip/.test(file.type) || /\.zip$/i.test(file.name)) return "archive";
    return "";
  }

  function formatBytes(n) {
    if (n < 1024 * 1024) return Math.round(n / 1024) + " KB";
    return (n / (1024 * 1024)).toFixed(1) + " MB";
  }

  // -- pairing -------------------------------------------------------------------------------

  async function pair(code, name) {
    say("");
    const out = await api("/v1/pair", { method: "POST", json: { code: code, name: name } });
    token = out.token;
    localStorage.setItem(TOKEN_KEY, token);
  }

  function forget(reason) {
    token = null;
    localStorage.removeItem(TOKEN_KEY);
    stopPolling();
    stopLiveWatch();
    showPairing();
    if (reason) say(reason);
  }

  function showPairing() {
    setStage("pair");
    show("pair-section", true);
    show("capture-section", false);
    show("forget-button", false);
    $("device-name").value = $("device-name").value || guessDeviceName();
  }

  function showCapture() {
    setStage("choose");
    show("pair-section", false);
    show("capture-section", true);
    show("forget-button", true);
    updateModeInputs();
    if (!liveTimer) startLiveWatch();
  }

  // -- choosing files ------------------------------------------------------------------------

  function currentMode() { return document.querySelector("input[name=mode]:checked").value; }

  function updateModeInputs() {
    // Import brings files that already exist; the other modes start with the camera.
    show("camera-choice", currentMode() !== "import");
    show("guided-choice", currentMode() === "guided" && guided !== null);
    if (currentMode() !== "guided" && guided) stopGuidedCamera();
  }

  function onFilesChosen(event) { addFiles(Array.from(event.target.files || [])); }

  function addFiles(files) {
    chosenFiles = chosenFiles.concat(files);
    const total = chosenFiles.reduce((sum, f) => sum + f.size, 0);
    $("chosen").textContent = chosenFiles.length
      ? chosenFiles.length + " file(s), " + formatBytes(total) + " chosen."
      : "No files chosen.";
    $("send-button").disabled = chosenFiles.length === 0;
  }

  // -- guided camera -------------------------------------------------------------------------

  function startGuidedCamera() {
    say("");
    guided.start().then(() => {
      show("camera-start", false);
      show("guided-box", true);
    }, (e) => {
      say("The live camera is not available (" + e.message + "). Take photos with the camera button below.");
    });
  }

  function stopGuidedCamera() {
    guided.stop();
    show("guided-box", false);
    show("camera-start", true);
  }

  function onGuidedPhoto(file, orientation) {
    if (orientation) photoOrientations.set(file, orientation);
    addFiles([file]);
  }

  // -- uploading -----------------------------------------------------------------------------

  function fileRow(name, size) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.className = "name";
    label.textContent = name + " (" + formatBytes(size) + ")";
    const bar = document.createElement("progress");
    bar.max = size || 1;
    bar.value = 0;
    bar.setAttribute("aria-label", "Upload of " + name);
    const state = document.createElement("span");
    state.className = "state";
    state.textContent = "waiting";
    li.append(label, bar, state);
    $("file-list").append(li);
    return { li: li, bar: bar, state: state };
  }

  function uploadOne(file, name, captureId, row) {
    return new Promise((resolve, reject) => {
      const metadata = { capture_id: captureId, filename: name, filetype: file.type || "" };
      const kind = kindOf(file);
      if (kind) metadata.kind = kind;
      if (photoOrientations.has(file)) metadata.orientation = JSON.stringify(photoOrientations.get(file));
      const upload = new tus.Upload(file, {
        endpoint: location.origin + "/v1/uploads",
        headers: { Authorization: "Bearer " + token },
        metadata: metadata,
        chunkSize: CHUNK_BYTES,
        retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
        removeFingerprintOnSuccess: true,
        // Resume only into the same capture: the fingerprint names it.
        fingerprint: () => Promise.resolve(["scanbridge", captureId, name, file.size, file.lastModified].join("/")),
        onProgress: (sent, total) => {
          row.bar.value = sent;
          row.state.textContent = Math.floor((100 * sent) / Math.max(total, 1)) + "%";
        },
        onSuccess: () => {
          row.bar.value = row.bar.max;
          row.state.textContent = "done";
          row.li.className = "done";
          resolve();
        },
        onError: (error) => {
          let reason = error.message;
          const response = error.originalResponse;
          if (response) {
            try { reason = JSON.parse(response.getBody()).error || reason; } catch (e) { /* keep message */ }
          }
          row.state.textContent = "failed: " + reason;
          row.li.className = "failed";
          reject(new Error(name + ": " + reason));
        },
      });
      row.state.textContent = "starting";
      upload.findPreviousUploads().then((previous) => {
        if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
        upload.start();
      });
    });
  }

  async function captureToUse(mode, name) {
    // A capture left unfinished by a reload is continued: the same files resume where they stopped.
    const pending = JSON.parse(localStorage.getItem(PENDING_KEY) || "null");
    if (pending && pending.mode === mode) {
      try {
        const status = await api("/v1/captures/" + encodeURIComponent(pending.id));
        if (status.status === "receiving") return status;
      } catch (e) { /* gone: make a new one */ }
    }
    const created = await api("/v1/captures", {
      method: "POST",
      json: { mode: mode, name: name || undefined, device: { app: "scanbridge-web", model: guessDeviceName() } },
    });
    created.files = [];
    localStorage.setItem(PENDING_KEY, JSON.stringify({ id: created.id, mode: mode }));
    return created;
  }

  async function send(event) {
    event.preventDefault();
    say("");
    const mode = currentMode();
    $("send-button").disabled = true;
    if (guided) stopGuidedCamera();
    let capture;
    try {
      capture = await captureToUse(mode, $("capture-name").value.trim());
    } catch (e) {
      say("Could not start a capture: " + e.message);
      $("send-button").disabled = false;
      return;
    }
    document.body.dataset.captureId = capture.id;
    setStage("uploading");
    show("capture-section", false);
    show("upload-section", true);
    show("coverage-section", mode === "guided");
    $("file-list").textContent = "";
    const names = uniqueNames(chosenFiles);
    const stored = new Map((capture.files || []).map((f) => [f.name, f.size]));
    const jobs = chosenFiles.map((file, i) => ({ file: file, name: names[i], row: fileRow(names[i], file.size) }));
    await uploadAll(capture.id, mode, jobs, stored);
  }

  async function uploadAll(captureId, mode, jobs, stored) {
    show("retry-button", false);
    try {
      for (const job of jobs) {
        if (job.row.li.className === "done") continue;
        if (stored.get(job.name) === job.file.size) { // already on the computer
          job.row.bar.value = job.row.bar.max;
          job.row.state.textContent = "done";
          job.row.li.className = "done";
          continue;
        }
        await uploadOne(job.file, job.name, captureId, job.row);
        if (mode === "guided") refreshCoverage(captureId);
      }
    } catch (e) {
      say("Upload stopped: " + e.message + ". Retry to resume where it stopped.");
      setStage("upload-failed");
      const retry = $("retry-button");
      retry.hidden = false;
      retry.onclick = () => uploadAll(captureId, mode, jobs, stored);
      return;
    }
    setStage("uploaded");
    await finish(captureId, mode);
  }

  // -- after the upload ----------------------------------------------------------------------

  async function finish(captureId, mode) {
    let out;
    try {
      out = await api("/v1/captures/" + encodeURIComponent(captureId) + "/finish", { method: "POST" });
    } catch (e) {
      say("Could not finish the capture: " + e.message);
      setStage("finish-failed");
      return;
    }
    localStorage.removeItem(PENDING_KEY);
    setStage("finished");
    show("job-section", true);
    if (out.job) {
      $("job-state").textContent = "Queued on the computer.";
    } else {
      $("job-state").textContent = "Received. Not processed automatically"
        + (out.not_queued_because ? ": " + out.not_queued_because : "") + ". Start it on the computer.";
    }
    startPolling(captureId, mode);
  }

  // -- a live scan streaming from another device (LiDAR app, `scanbridge send --live`) ---------

  let liveTimer = null;
  let livePreviewUrl = null;

  function stopLiveWatch() {
    if (liveTimer) clearTimeout(liveTimer);
    liveTimer = null;
  }

  async function fetchPreview(captureId) {
    const response = await fetch("/v1/captures/" + encodeURIComponent(captureId) + "/live/preview.png", {
      headers: { "Authorization": "Bearer " + token }, cache: "no-store",
    });
    if (!response.ok) return null; // no depth with a pose yet
    return URL.createObjectURL(await response.blob());
  }

  function startLiveWatch() {
    const tick = async () => {
      try {
        const live = await api("/v1/live");
        const now = (live.captures || [])[0];
        if (now) {
          show("live-section", true);
          document.body.dataset.liveCapture = now.id;
          $("live-title").textContent = "Live scan: " + (now.name || now.id);
          $("live-summary").textContent = now.frames + " frames so far. Move slowly around the object "
            + "or room; the picture is what has been seen from above.";
          const url = await fetchPreview(now.id);
          if (url) {
            if (livePreviewUrl) URL.revokeObjectURL(livePreviewUrl);
            livePreviewUrl = url;
            $("live-preview").src = url;
          }
          await refreshCoverage(now.id);
        } else if (document.body.dataset.liveCapture) {
          $("live-summary").textContent = "The stream has stopped.";
          delete document.body.dataset.liveCapture;
        }
      } catch (e) {
        // the live view is a hint; the rest of the page goes on without it
      }
      if (token) liveTimer = setTimeout(tick, LIVE_POLL_MS);
    };
    stopLiveWatch();
    tick();
  }

  function stopPolling() {
    if (pollTimer) clearTimeout(pollTimer);
    pollTimer = null;
  }

  function startPolling(captureId, mode) {
    let lastEvent = 0;
    const tick = async () => {
      try {
        const status = await api("/v1/captures/" + encodeURIComponent(captureId));
        const events = await api("/v1/captures/" + encodeURIComponent(captureId) + "/events?after=" + lastEvent);
        for (const e of events.events) {
          lastEvent = Math.max(lastEvent, e.id);
          if (e.message) addLogLine(e.message);
        }
        if (mode === "guided") refreshCoverage(captureId);
        showJob(status.job);
        const model = (status.results || []).find((r) => r.name === "model.usdz");
        if (model) { await showResult(captureId); return; }
        if (status.job && (status.job.state === "failed" || status.job.state === "cancelled")) return;
      } catch (e) {
        say("Lost contact with the computer (" + e.message + "); still trying.");
      }
      pollTimer = setTimeout(tick, POLL_MS);
    };
    stopPolling();
    tick();
  }

  function addLogLine(text) {
    const li = document.createElement("li");
    li.textContent = text;
    const log = $("job-log");
    log.append(li);
    while (log.children.length > 6) log.firstElementChild.remove();
  }

  function showJob(job) {
    if (!job) return;
    const p = job.progress || {};
    const bar = $("job-progress");
    bar.value = typeof p.overall === "number" ? p.overall : 0;
    let text = "Job " + job.id + ": " + job.state;
    if (p.stage) text += ", " + p.stage;
    if (typeof p.overall === "number") text += " " + Math.round(100 * p.overall) + "%";
    if (typeof p.eta_s === "number" && job.state === "running") text += ", about " + Math.ceil(p.eta_s / 60) + " min left";
    if (job.error) text += ": " + job.error;
    $("job-state").textContent = text;
  }

  async function refreshCoverage(captureId) {
    let cov;
    try {
      cov = await api("/v1/captures/" + encodeURIComponent(captureId) + "/coverage");
    } catch (e) {
      return; // coverage is a hint; the upload goes on without it
    }
    show("coverage-section", true);
    const table = $("coverage-table");
    if (!cov.available) {
      $("coverage-summary").textContent = "Coverage is not known yet" + (cov.reason ? ": " + cov.reason : ".");
      table.hidden = true;
      return;
    }
    $("coverage-summary").textContent = Math.round(100 * cov.covered_fraction) + "% of directions seen ("
      + cov.views + " views). Fill the empty cells by moving around the object.";
    const body = table.tBodies[0];
    body.textContent = "";
    const bands = cov.counts.slice().reverse(); // top row: from above
    bands.forEach((row, r) => {
      const tr = document.createElement("tr");
      const edges = cov.elevation_edges_deg;
      const band = cov.counts.length - 1 - r;
      tr.setAttribute("aria-label", "elevation " + edges[band] + " to " + edges[band + 1] + " degrees");
      for (const n of row) {
        const td = document.createElement("td");
        td.textContent = n ? String(n) : "";
        if (n) td.className = "seen";
        tr.append(td);
      }
      body.append(tr);
    });
    table.hidden = false;
  }

  async function showResult(captureId) {
    const link = await api("/v1/captures/" + encodeURIComponent(captureId) + "/share", {
      method: "POST", json: { hours: 168 },
    });
    // Apple's AR Quick Look form: rel="ar" and an <img> as the anchor's only child.
    const a = document.createElement("a");
    a.rel = "ar";
    a.href = link.usdz;
    const img = document.createElement("img");
    img.src = link.poster;
    img.alt = "The model: tap to view in AR";
    a.append(img);
    $("ar-holder").replaceChildren(a);
    $("share-link").href = link.url;
    $("share-link").textContent = link.url;
    setStage("result");
    show("result-section", true);
  }

  // -- start ---------------------------------------------------------------------------------

  async function start() {
    $("pair-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await pair($("pair-code").value.trim(), $("device-name").value.trim());
        say("Paired.", true);
        showCapture();
      } catch (e) {
        say("Pairing failed: " + e.message);
      }
    });
    for (const radio of document.querySelectorAll("input[name=mode]")) radio.addEventListener("change", updateModeInputs);
    $("camera-input").addEventListener("change", onFilesChosen);
    $("library-input").addEventListener("change", onFilesChosen);
    $("capture-form").addEventListener("submit", send);
    if (window.ScanBridgeGuided) {
      guided = new window.ScanBridgeGuided.GuidedCamera({
        box: $("guided-box"), video: $("viewfinder-video"), ring: $("orbit-ring"), hint: $("guide-hint"),
        summary: $("ring-summary"),
      }, onGuidedPhoto);
      $("camera-start").addEventListener("click", startGuidedCamera);
      $("shutter").addEventListener("click", () => guided.shoot().catch((e) => say("No photo: " + e.message)));
    }
    $("again-button").addEventListener("click", () => location.replace("/app/"));
    $("forget-button").addEventListener("click", () => forget("Unpaired."));

    if (typeof tus === "undefined" || !tus.isSupported) {
      say("Resumable uploads are unavailable here (tus-js-client did not load; on the computer run `npm ci`).");
    }
    try {
      const info = await api("/v1/info");
      $("server-line").textContent = "Sending to " + info.name + ".";
    } catch (e) {
      say("Cannot reach the computer: " + e.message);
    }
    const params = new URLSearchParams(location.search);
    const code = params.get("code");
    if (code) {
      history.replaceState(null, "", location.pathname); // the code is used up; keep it out of history
      try {
        await pair(code, guessDeviceName());
        say("Paired.", true);
      } catch (e) {
        if (!token) {
          $("pair-code").value = code;
          showPairing();
          say("Pairing failed: " + e.message);
          return;
        }
      }
    }
    if (token) showCapture(); else showPairing();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
