// gcdial live page, Campaigns panel: preview an upload, create, and one card per campaign with
// its progress by outcome, agents, rate budget, calls per minute (inline SVG), deferred contacts,
// report downloads and start / pause / resume / stop. Plain JavaScript, no library.
// Refreshed on the live stream's campaign events, and polled (at most every 5 s, only while the
// tab is visible) while a campaign runs.
"use strict";
(function () {
  const page = window.gcdialPage;
  const panel = document.getElementById("campaigns-panel");
  if (!page || !panel) return;
  const { api, el, notice, words, csrf } = page;
  const $ = (sel) => panel.querySelector(sel);
  const SVG = "http://www.w3.org/2000/svg";
  const ACTIONS = { created: ["start"], running: ["pause", "stop"], paused: ["resume", "stop"],
                    failed: ["resume", "stop"] };
  const BUSY = new Set(["running", "pausing", "stopping"]);
  const POLL_BUSY_MS = 5000;
  const POLL_IDLE_MS = 30000;
  const open = new Set(); // ids of the cards shown open (the user's choice is kept)
  const closed = new Set();
  let pollTimer = null;
  let loading = null;
  let again = false;
  let previewSeq = 0;
  let signedOut = false; // a 401: the page says so; stop polling

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c);
    return node;
  }

  const pad = (n) => String(n).padStart(2, "0");
  function localTime(iso) {
    const d = new Date(iso);
    return pad(d.getHours()) + ":" + pad(d.getMinutes());
  }
  function relative(iso) {
    const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
    if (s <= 0) return "due now";
    if (s < 60) return "in " + s + " s";
    const m = Math.round(s / 60);
    if (m < 60) return "in " + m + " min";
    const h = Math.floor(m / 60);
    return "in " + h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
  }
  function outcomeClass(outcome) {
    if (outcome === "answered") return "o-ok";
    if (outcome === "no_answer" || outcome === "busy") return "o-retry";
    if (outcome === "unknown") return "o-unknown";
    if (["do_not_call", "unknown_time_zone", "no_calling_hours", "skipped"].includes(outcome)) {
      return "o-skip";
    }
    return "o-bad";
  }

  // Preview and upload ---------------------------------------------------------------------
  function formData() {
    const form = $("#campaign-form");
    const data = new FormData(form);
    for (const [k, v] of [...data.entries()]) if (v === "") data.delete(k);
    return data;
  }

  async function postForm(path) {
    const answer = await fetch(path, { method: "POST", body: formData(),
      headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
    const data = await answer.json().catch(() => null);
    if (!answer.ok) {
      const err = (data && data.error) || { message: "HTTP " + answer.status };
      const problem = new Error(err.message + (err.hint ? " " + err.hint : ""));
      problem.status = answer.status;
      throw problem;
    }
    return data;
  }

  function uploadButton(count) {
    const button = $("#campaign-upload");
    button.disabled = !(count > 0);
    button.textContent = count > 0 ? "Upload " + count + (count === 1 ? " row" : " rows")
      : "Upload";
  }

  async function preview() {
    const file = $("#campaign-form input[name=file]").files[0];
    const box = $("#campaign-preview");
    if (!file) { box.hidden = true; uploadButton(0); return; }
    const seq = ++previewSeq;
    box.hidden = false;
    box.className = "preview";
    box.textContent = "Checking " + file.name + "…";
    try {
      const p = await postForm("/v1/campaigns/preview");
      if (seq !== previewSeq) return;
      renderPreview(p, file.name);
      notice("");
      uploadButton(p.canUpload ? p.rows.accepted : 0);
    } catch (err) {
      if (seq !== previewSeq) return;
      uploadButton(0);
      box.className = "preview bad";
      box.textContent = "The contact list was refused: " + err.message;
      notice("The contact list was refused: " + err.message);
    }
  }

  function renderPreview(p, name) {
    const box = $("#campaign-preview");
    const r = p.rows;
    const parts = [r.accepted + " will be dialed", r.refused + " refused"];
    if (r.deferred) parts.push(r.deferred + " wait for the calling window");
    if (r.waitingForAgent) parts.push(r.waitingForAgent + " wait for an agent not listed");
    const summary = el("p", { id: "preview-counts" }, el("strong", {}, name), ": " + r.total
      + " rows: " + parts.join(", ") + ".");
    const children = [summary];
    if (!p.canUpload) {
      children.push(el("p", { class: "bad" }, "No row of this list can be dialed: fix the rows "
        + "below, then choose the file again."));
    }
    if (p.refused.length) {
      const rows = p.refused.map((x) => el("tr", { "data-line": x.line },
        page.td("Line", String(x.line)), page.td("Column", x.column || ""),
        page.td("Why", x.reason), page.td("Fix", x.fix)));
      children.push(el("table", { class: "list", id: "preview-refused" },
        el("caption", { class: "muted small" }, "Rows that would be refused"),
        el("thead", {}, el("tr", {}, el("th", {}, "Line"), el("th", {}, "Column"),
          el("th", {}, "Why"), el("th", {}, "Fix"))),
        el("tbody", {}, ...rows)));
      if (p.moreRefused) {
        children.push(el("p", { class: "muted small" }, "… and " + p.moreRefused
          + " more refused rows (the campaign report lists them all)."));
      }
    }
    box.className = "preview";
    box.replaceChildren(...children);
  }

  async function upload(ev) {
    ev.preventDefault();
    const form = $("#campaign-form");
    const button = $("#campaign-upload");
    button.disabled = true;
    previewSeq++; // a preview still in flight must not clear what the upload says
    try {
      const data = await postForm("/v1/campaigns");
      notice("Campaign " + data.name + " created: review it, then press start.", "info");
      open.add(data.id);
      form.reset();
      $("#campaign-preview").hidden = true;
      uploadButton(0);
    } catch (err) {
      notice("The contact list was refused: " + err.message);
      button.disabled = false;
    }
    await load();
  }

  // Cards ----------------------------------------------------------------------------------
  function settledText(m) {
    const d = m.detail && m.detail.progress;
    if (d) return d.settled + " / " + d.total;
    const counts = m.counts;
    if (!counts) return "";
    const c = counts.contacts || {};
    return (counts.total - (c.pending || 0) - (c.active || 0)) + " / " + counts.total;
  }

  function progressPart(m) {
    const d = m.detail.progress;
    const total = d.total || 0;
    const entries = Object.entries(d.byOutcome);
    const meter = el("div", { class: "meter", role: "img", "aria-label": "Settled "
      + d.settled + " of " + total + (entries.length ? ": " + entries.map(([k, v]) =>
        words(k) + " " + v).join(", ") : "") });
    for (const [outcome, n] of entries) {
      if (!total) break;
      meter.append(el("span", { class: "seg " + outcomeClass(outcome),
        style: null, title: words(outcome) + ": " + n, "data-width": (100 * n / total) }));
    }
    // Widths through the CSSOM: the page's Content-Security-Policy forbids style attributes.
    for (const seg of meter.children) seg.style.width = seg.dataset.width + "%";
    const legend = el("ul", { class: "legend" }, ...entries.map(([k, v]) => el("li", {},
      el("span", { class: "swatch " + outcomeClass(k), "aria-hidden": "true" }),
      words(k) + " " + v)));
    const counts = m.counts || {};
    const dispositions = dispositionPart(d);
    return el("div", { class: "card-part" },
      el("div", {}, "Settled ", el("strong", { class: "settled" }, settledText(m)),
        counts.inFlight ? " · in flight " + counts.inFlight : "",
        counts.needsReview ? " · " + counts.needsReview + " to review" : ""),
      meter, entries.length ? legend : el("p", { class: "muted small" }, "No outcome yet."),
      dispositions,
      counts.rowsRefused ? el("div", { class: "warn small" },
        counts.rowsRefused + (counts.rowsRefused === 1 ? " row" : " rows")
          + " refused (see the campaign report)") : null);
  }

  // The outcome bar by disposition: calls by the agent's wrap-up code (queue campaigns only).
  function dispositionPart(d) {
    const entries = Object.entries(d.byDisposition || {});
    const missing = d.wrapupsMissing || 0;
    if (!entries.length && !missing) return null;
    const calls = entries.reduce((sum, [, n]) => sum + n, 0) + missing;
    const meter = el("div", { class: "meter dispositions", role: "img", "aria-label":
      "Calls by wrap-up: " + entries.map(([k, v]) => k + " " + v).join(", ")
      + (missing ? ", no wrap-up " + missing : "") });
    const shown = entries.map(([k, v], i) => [k, v, "d-" + (i % 6)]);
    if (missing) shown.push(["no wrap-up (to review)", missing, "o-unknown"]);
    for (const [name, n, cls] of shown) {
      meter.append(el("span", { class: "seg " + cls, title: name + ": " + n,
        "data-width": (100 * n / calls) }));
    }
    for (const seg of meter.children) seg.style.width = seg.dataset.width + "%";
    const legend = el("ul", { class: "legend" }, ...shown.map(([k, v, cls]) => el("li", {},
      el("span", { class: "swatch " + cls, "aria-hidden": "true" }), k + " " + v)));
    return el("div", { class: "disposition" }, el("div", { class: "small" }, "By wrap-up"),
      meter, legend);
  }

  function agentsPart(m) {
    const rows = m.detail.agents.map((a) => el("tr", { "data-agent": a.agent },
      page.td("Agent", a.agent),
      page.td("State", el("span", { class: a.state === "on call" ? "step"
        : a.state === "idle" ? "ok" : a.state === "checking" ? "muted" : "bad" }, a.state)),
      page.td("Now", a.step ? a.step + (a.forSeconds !== null ? " · "
        + Math.round(a.forSeconds) + " s" : "") : ""),
      page.td("Calls", String(a.calls)),
      page.td("Why", a.why || "")));
    return el("div", { class: "card-part" }, el("h3", {}, "Agents"),
      el("table", { class: "list agents" }, el("thead", {}, el("tr", {},
        el("th", {}, "Agent"), el("th", {}, "State"), el("th", {}, "Now"), el("th", {}, "Calls"),
        el("th", {}, "Why"))), el("tbody", {}, ...rows)));
  }

  function ratePart(m) {
    const r = m.detail.rate;
    const g = r.genesys;
    const items = [
      el("li", {}, "Calls in flight ", el("strong", { class: "in-flight" }, String(r.inFlight)),
        " of at most " + (r.maxConcurrent === null ? "one per agent" : r.maxConcurrent)),
      el("li", {}, "Calls begun in the last minute ", el("strong", {}, String(r.callsLastMinute)),
        r.callsPerMinuteLimit ? " of " + r.callsPerMinuteLimit : " (no per-minute limit)"),
    ];
    if (g) {
      items.push(el("li", {}, "Genesys API requests left ",
        el("strong", {}, g.remaining === null ? "not reported yet" : g.remaining
          + (g.limit !== null ? " of " + g.limit : "")),
        g.rateLimited ? " · rate limited " + g.rateLimited + " times" : "",
        g.pausedSeconds > 0 ? " · paused " + Math.ceil(g.pausedSeconds) + " s" : ""));
    }
    return el("div", { class: "card-part" }, el("h3", {}, "Rate budget"),
      el("ul", { class: "rate" }, ...items));
  }

  function chartPart(m) {
    const pm = m.detail.perMinute;
    const counts = pm.counts;
    const peak = Math.max(1, ...counts);
    const total = counts.reduce((a, b) => a + b, 0);
    const W = 600;
    const H = 100;
    const step = W / counts.length;
    const start = Date.parse(pm.start);
    const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, class: "chart", role: "img",
      "aria-label": "Calls begun per minute over the last " + pm.minutes + " minutes: " + total
        + " in all, at most " + Math.max(0, ...counts) + " in a minute",
      preserveAspectRatio: "none" });
    chart.append(svg("line", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: "axis" }));
    counts.forEach((n, i) => {
      if (!n) return;
      const h = Math.max(2, (H - 4) * n / peak);
      const at = new Date(start + i * 60000);
      chart.append(svg("rect", { x: (i * step + 1).toFixed(1), y: (H - h).toFixed(1),
        width: Math.max(1, step - 2).toFixed(1), height: h.toFixed(1), class: "bar-n",
        "data-count": n }, svg("title", {}, pad(at.getHours()) + ":" + pad(at.getMinutes())
        + " · " + n + (n === 1 ? " call" : " calls"))));
    });
    return el("div", { class: "card-part" }, el("h3", {}, "Calls per minute (last hour)"),
      chart, el("div", { class: "chart-scale muted small" },
        el("span", {}, localTime(pm.start)), el("span", {}, "peak " + Math.max(0, ...counts)),
        el("span", {}, "now")));
  }

  function deferredPart(m) {
    const d = m.detail.deferred;
    if (!d.total) {
      return el("div", { class: "card-part" }, el("h3", {}, "Deferred"),
        el("p", { class: "muted small" }, "No contact waits for a later time."));
    }
    const rows = d.items.map((x) => el("tr", { "data-line": x.line },
      page.td("Line", String(x.line)), page.td("Key", x.externalId || ""),
      page.td("Why", x.reason),
      page.td("Due", x.dueAt ? el("time", { datetime: x.dueAt, class: "due" },
        localTime(x.dueAt) + " (" + relative(x.dueAt) + ")") : "")));
    return el("div", { class: "card-part" }, el("h3", {}, "Deferred (" + d.total + ")"),
      el("table", { class: "list deferred" }, el("thead", {}, el("tr", {},
        el("th", {}, "Line"), el("th", {}, "Key"), el("th", {}, "Why"), el("th", {}, "Due"))),
        el("tbody", {}, ...rows)),
      d.total > d.items.length ? el("p", { class: "muted small" }, "… and "
        + (d.total - d.items.length) + " more.") : null);
  }

  function actionButtons(m) {
    return (ACTIONS[m.state] || []).map((action) => el("button", {
      type: "button", class: action === "stop" ? "danger" : action === "start" ? "" : "quiet",
      "aria-label": action + " campaign " + m.name,
      onclick: (e) => act(m, action, e.target) }, action));
  }

  function card(m) {
    const isOpen = open.has(m.id) || (!closed.has(m.id) && BUSY.has(m.state));
    const node = el("details", { class: "campaign", "data-campaign": m.id, "data-state": m.state,
                                 open: isOpen });
    node.addEventListener("toggle", () => {
      if (node.open === isOpen) return; // the toggle event of the card's own creation
      if (node.open) { open.add(m.id); closed.delete(m.id); load(); }
      else { open.delete(m.id); closed.add(m.id); }
    });
    const summary = el("summary", {},
      el("span", { class: "name" }, m.name), " ",
      el("span", { class: "step" }, m.state), " ",
      el("span", { class: "muted small" }, "settled "), el("span", { class: "settled" },
        settledText(m)));
    const body = [el("div", { class: "row actions" }, el("span", { class: "muted small" }, m.id),
      ...actionButtons(m),
      m.counts ? el("a", { href: "/v1/campaigns/" + encodeURIComponent(m.id) + "/report?format=csv",
        download: "", class: "download" }, "Report (CSV)") : null,
      m.counts ? el("a", { href: "/v1/campaigns/" + encodeURIComponent(m.id)
        + "/report?format=json", download: "", class: "download" }, "Report (JSON)") : null)];
    if (m.error) body.push(el("p", { class: "bad small" }, m.error));
    if (m.detail) {
      body.push(el("div", { class: "card-grid" }, progressPart(m), ratePart(m), agentsPart(m),
        chartPart(m), deferredPart(m)));
    } else if (isOpen) {
      body.push(el("p", { class: "muted small" }, "Loading…"));
    }
    node.append(summary, ...body);
    return node;
  }

  function render(list) {
    const box = $("#campaigns");
    const focused = document.activeElement;
    const focusKey = focused && box.contains(focused)
      ? [focused.closest("[data-campaign]")?.dataset.campaign, focused.tagName,
         focused.textContent] : null;
    box.replaceChildren(...(list.length ? list.map(card)
      : [el("p", { class: "muted" }, "No campaigns yet.")]));
    if (focusKey) { // keep the keyboard where it was across a refresh
      const again = [...box.querySelectorAll(`[data-campaign="${focusKey[0]}"] ${focusKey[1]}`)]
        .find((n) => n.textContent === focusKey[2]);
      if (again) again.focus();
    }
  }

  async function fetchAll() {
    const list = (await api("GET", "/v1/campaigns")).campaigns;
    const wanted = list.filter((m) => open.has(m.id)
      || (!closed.has(m.id) && BUSY.has(m.state)));
    const details = await Promise.all(wanted.map((m) =>
      api("GET", "/v1/campaigns/" + encodeURIComponent(m.id) + "/detail").catch(() => null)));
    const byId = new Map(details.filter(Boolean).map((d) => [d.id, d]));
    return list.map((m) => byId.get(m.id) || m);
  }

  // One load at a time; a request during a load runs once after it.
  async function load() {
    if (loading) { again = true; return loading; }
    clearTimeout(pollTimer);
    loading = (async () => {
      let busy = false;
      try {
        const list = await fetchAll();
        render(list);
        busy = list.some((m) => BUSY.has(m.state));
      } catch (err) {
        if (err.status === 401) signedOut = true;
        else busy = true; // try again soon
      } finally {
        loading = null;
      }
      if (again) { again = false; return load(); }
      schedule(busy);
    })();
    return loading;
  }

  function schedule(busy) {
    clearTimeout(pollTimer);
    if (signedOut) return;
    pollTimer = setTimeout(() => {
      if (document.visibilityState === "visible") load();
      else schedule(busy); // hidden: no polling; visibilitychange reloads
    }, busy ? POLL_BUSY_MS : POLL_IDLE_MS);
  }

  async function act(m, action, button) {
    button.disabled = true;
    try {
      await api("POST", "/v1/campaigns/" + encodeURIComponent(m.id) + "/" + action);
      notice("");
      open.add(m.id);
      closed.delete(m.id);
    } catch (err) {
      notice("Campaign " + m.name + ": " + action + " was not applied: " + err.message);
    }
    await load();
  }

  let eventTimer = null;
  function onCampaignEvent() {
    clearTimeout(eventTimer);
    eventTimer = setTimeout(load, 300);
  }

  $("#campaign-form").addEventListener("submit", upload);
  $("#campaign-form input[name=file]").addEventListener("change", preview);
  for (const name of ["agents", "window", "retryNoAnswer"]) {
    $("#campaign-form input[name=" + name + "]").addEventListener("change", preview);
  }
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") load();
  });
  page.on("campaign.updated", onCampaignEvent);
  page.on("page.reconnected", onCampaignEvent); // catch up on what changed meanwhile
  setInterval(() => { // "in 4 min" stays true between refreshes
    for (const t of panel.querySelectorAll("time.due")) {
      t.textContent = localTime(t.getAttribute("datetime")) + " ("
        + relative(t.getAttribute("datetime")) + ")";
    }
  }, 15000);
  load();
})();
