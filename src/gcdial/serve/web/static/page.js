// gcdial live page: plain JavaScript, no build step, no library. It uses the service's own API
// (/v1), signed in by its session cookie, with the CSRF token on every action. Live updates come
// from /v1/events (Server-Sent Events); the browser resumes with Last-Event-ID.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const canDial = document.querySelector("main").dataset.canDial === "yes";
  const calls = new Map(); // id -> call view (every call this page has seen)
  let agents = [];
  let lastEventId = 0;
  let stream = null;
  let wasDown = false;
  let signedOut = false;
  let myCallId = null;
  let pendingIdem = null;
  const CALL_EVENTS = ["call.placing", "call.placed", "call.progress", "call.unknown",
    "call.not_placed", "call.refused", "call.ended", "call.hangup_requested", "call.verdict"];
  const TERMINAL = new Set(["call.ended", "call.unknown", "call.not_placed", "call.refused",
                            "call.verdict"]);

  const $ = (sel) => document.querySelector(sel);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const td = (label, ...c) => el("td", { "data-label": label }, ...c);

  function notice(text, kind) {
    const box = $("#notice");
    box.textContent = text;
    box.className = kind === "info" ? "alert info" : "alert";
    box.hidden = !text;
  }

  function showSignedOut(message) {
    signedOut = true;
    if (stream) stream.close();
    setLive("signed out", "down");
    const box = $("#notice");
    box.className = "alert";
    box.replaceChildren(el("strong", {}, message || "You are signed out."), " ",
      el("a", { href: "/" }, "Sign in again"));
    box.hidden = false;
  }

  async function api(method, path, body, extra) {
    const headers = { "X-CSRF-Token": csrf, ...(extra || {}) };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const answer = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await answer.json(); } catch (e) { data = null; }
    if (answer.status === 401) {
      const err = (data && data.error) || {};
      showSignedOut((err.message || "You are signed out.") + " " + (err.hint || ""));
    }
    if (!answer.ok) {
      const err = (data && data.error) || { message: "HTTP " + answer.status };
      const problem = new Error(err.message + (err.hint ? " " + err.hint : ""));
      problem.status = answer.status;
      problem.type = err.type;
      problem.data = data;
      throw problem;
    }
    return data;
  }

  function setLive(text, kind) {
    const pill = $("#live");
    pill.textContent = text;
    pill.className = "pill " + (kind || "");
  }

  const pad = (n) => String(n).padStart(2, "0");
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.max(0, Math.round(seconds));
    return Math.floor(s / 60) + ":" + pad(s % 60);
  }
  // The page's one way to show a moment: HH:MM:SS local time, with the date before it when it
  // is not today (review items can be days old).
  function clock(iso) {
    if (!iso) return "?";
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    const time = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    const now = new Date();
    if (d.toDateString() === now.toDateString()) return time;
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + time;
  }
  function resultOf(call) {
    if (call.outcome) return call.outcome;
    return call.status;
  }
  function resultClass(result) {
    if (result === "answered" || result === "placed") return "ok";
    if (result === "unknown") return "warn";
    return "bad";
  }
  const words = (s) => String(s || "").replaceAll("_", " ");
  // Who placed a call: a campaign the service runs, or an API key (a CRM, this page).
  const placedBy = (c) => (c.campaign ? "campaign " + (c.campaign.name || c.campaign.id)
    : c.keyName || "");

  function upsert(call, step) {
    const known = calls.get(call.id) || {};
    const merged = { ...known, ...call };
    if (step) merged.step = step;
    else if (!merged.step) merged.step = call.status === "placing" ? "placing" : "agent ringing";
    if (merged.ended) merged.step = "ended";
    calls.set(call.id, merged);
    return merged;
  }

  function activeCalls() {
    return [...calls.values()]
      .filter((c) => !c.ended && c.status !== "unknown")
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  function renderActive() {
    const rows = activeCalls().map((c) => el("tr", { "data-call": c.id },
      td("Agent", c.agent, c.campaign ? el("div", { class: "muted small placed-by" },
        placedBy(c)) : null),
      td("Number", c.to),
      td("Step", el("span", { class: "step" }, c.step)),
      td("Time", el("span", { class: "timer", "data-since": c.createdAt },
        duration((Date.now() - Date.parse(c.createdAt)) / 1000))),
      td("", canDial && c.conversationId
        ? el("button", { type: "button", class: "danger", onclick: () => hangUp(c) },
             "Hang up")
        : null)));
    $("#active").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No call in progress."))]));
  }

  let recentList = [];
  function renderRecent(list) {
    recentList = list;
    const rows = list.map((c) => {
      const result = c.ended ? resultOf(c) : c.status === "unknown" ? "unknown" : c.step;
      return el("tr", { "data-call": c.id },
        td("Started", clock(c.createdAt)),
        td("Agent", c.agent),
        td("Number", c.to),
        td("Outcome", el("span", { class: c.ended || c.status === "unknown"
          ? resultClass(result) : "step", title: c.detail || "" }, words(result))),
        td("Talk", duration(c.talkSeconds)),
        td("Placed by", placedBy(c)));
    });
    $("#recent").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No calls match."))]));
  }

  function renderAgents() {
    const live = new Map();
    for (const c of activeCalls()) {
      live.set((c.agent || "").toLowerCase(), c);
      if (c.agentId) live.set(c.agentId.toLowerCase(), c);
    }
    const rows = agents.map((a) => {
      const now = live.get(a.agent.toLowerCase()) || (a.id && live.get(a.id.toLowerCase()));
      return el("tr", { "data-agent": a.agent },
        td("Agent", a.name ? a.name : a.agent, a.name ? el("div", { class: "muted small" },
          a.agent) : null),
        td("Ready", a.ready ? el("span", { class: "ok" }, "ready")
          : el("span", { class: "bad", title: a.problem || "" },
            "not ready" + (a.reason ? " (" + words(a.reason).toLowerCase() + ")" : ""))),
        td("Station", a.station || el("span", { class: "muted" }, a.problem || "none")),
        td("Presence", [a.presence, a.routingStatus].filter(Boolean)
          .map((w) => words(w).toLowerCase()).join(" / ")),
        td("Now", now ? el("span", { class: "step" }, now.step + " · " + now.to)
          : el("span", { class: "muted" }, "idle")));
    });
    const empty = shownQueue
      ? "No members of " + shownQueue.name + " that you may watch."
      : "No agents yet: they appear with your key's agents or your first call; or choose a queue.";
    $("#agents").replaceChildren(...(rows.length ? rows
      : [el("tr", {}, el("td", { colspan: 5, class: "muted" }, empty))]));
  }

  // The chooser: the org's queues (GET /v1/queues) and groups (GET /v1/groups); hidden when
  // neither can be read.
  async function loadQueues() {
    const chooser = $("#agents-queue");
    const [queues, groups] = await Promise.all([
      api("GET", "/v1/queues").then((d) => d.queues, () => null),
      api("GET", "/v1/groups").then((d) => d.groups, () => null)]);
    for (const [kind, label, list] of [["queue", "Queues", queues], ["group", "Groups", groups]]) {
      if (!list || !list.length) continue;
      chooser.append(el("optgroup", { label },
        ...list.map((q) => el("option", { value: kind + ":" + q.id }, q.name))));
    }
    if (!queues && !groups) return;
    syncQueueChooser();
    $("#queue-chooser").hidden = false;
    chooser.addEventListener("change", () => {
      watched = chooser.value;
      const url = new URL(location.href);
      url.searchParams.delete("queue");
      url.searchParams.delete("group");
      const at = watched.indexOf(":");
      if (watched) url.searchParams.set(watched.slice(0, at), watched.slice(at + 1));
      history.replaceState(null, "", url);
      $("#agents").replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted" },
        "Loading…")));
      loadAgents().catch((err) => notice("Could not load the agents: " + err.message));
    });
  }

  function syncQueueChooser() {
    const chooser = $("#agents-queue");
    const value = shownQueue ? shownQueue.kind + ":" + shownQueue.id : "";
    if ([...chooser.options].some((o) => o.value === value)) chooser.value = value;
  }

  function filterQuery() {
    const form = new FormData($("#filters"));
    const q = new URLSearchParams();
    for (const [k, v] of form.entries()) {
      if (!v) continue;
      if (k === "sinceMinutes") q.set("since", new Date(Date.now() - Number(v) * 60000).toISOString());
      else q.set(k, v);
    }
    return q.toString();
  }
  const CALLS = "/v1/calls?expand=progress&limit=50";

  async function loadCalls() {
    const all = await api("GET", CALLS);
    for (const c of all.calls) upsert(c, c.step);
    const filtered = filterQuery() ? (await api("GET", CALLS + "&" + filterQuery())).calls
      : all.calls;
    renderRecent(filtered);
    renderActive();
    renderAgents();
    return all.lastEventId;
  }

  // Presence: pushed as agent.updated events while the service's notifications channel is up;
  // polled (slowly) only while it is down, and the page says which.
  // Whose members the panel shows: the queue or group chosen in the <select> (kept in the URL
  // as ?queue=ID or ?group=ID), else the queue the key was made to watch (the service applies
  // it), else none. `watched` is "queue:ID", "group:ID" or "".
  let agentPoll = null;
  const startQuery = new URLSearchParams(location.search);
  let watched = startQuery.get("group") ? "group:" + startQuery.get("group")
    : startQuery.get("queue") ? "queue:" + startQuery.get("queue") : "";
  let shownQueue = null;
  async function loadAgents() {
    const at = watched.indexOf(":");
    const path = "/v1/agents" + (watched ? "?" + watched.slice(0, at) + "="
      + encodeURIComponent(watched.slice(at + 1)) : "");
    let answer;
    try {
      answer = await api("GET", path);
    } catch (err) {
      if (err.type !== "queue_not_found" && err.type !== "group_not_found") throw err;
      agents = [];
      shownQueue = null;
      $("#agents").replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "bad" },
        err.message)));
      return;
    }
    agents = answer.agents;
    shownQueue = answer.queue ? { kind: "queue", ...answer.queue }
      : answer.group ? { kind: "group", ...answer.group } : null;
    syncQueueChooser();
    renderAgents();
    const presence = answer.presence || { live: false, pollSeconds: 15 };
    const note = $("#presence-mode");
    if (note) {
      note.textContent = presence.live ? "Presence: live"
        : "Presence: live updates unavailable; refreshed every " + presence.pollSeconds + " s";
      note.className = "small " + (presence.live ? "muted" : "warn");
    }
    clearTimeout(agentPoll);
    if (!presence.live) {
      agentPoll = setTimeout(() => { if (!signedOut) loadAgents().catch(() => {}); },
        presence.pollSeconds * 1000);
    }
  }

  let agentsTimer = null;
  function onAgentEvent(e) {
    if (e.lastEventId) lastEventId = Math.max(lastEventId, Number(e.lastEventId));
    const data = JSON.parse(e.data);
    const change = data.agent;
    if (change) {
      const known = agents.find((a) => a.id === change.id);
      if (known) {
        if (change.presence) known.presence = change.presence;
        if (change.routingStatus) known.routingStatus = change.routingStatus;
        renderAgents();
      }
    }
    // Readiness depends on more than presence: read the agents again, once for a burst.
    clearTimeout(agentsTimer);
    agentsTimer = setTimeout(() => loadAgents().catch(() => {}), 500);
  }

  let recentTimer = null;
  function refreshRecentSoon() {
    clearTimeout(recentTimer);
    recentTimer = setTimeout(() => {
      api("GET", CALLS + "&" + filterQuery()).then((d) => {
        for (const c of d.calls) if (c.keyName && calls.has(c.id)) calls.get(c.id).keyName = c.keyName;
        renderRecent(d.calls);
      })
        .catch(() => {});
    }, 300);
  }

  // Other panels (review.js) subscribe to event types and to "page.ready" / "page.reconnected".
  const hooks = new Map();
  function emit(type, data) {
    for (const fn of hooks.get(type) || []) {
      try { fn(data, type); } catch (err) { console.error(err); }
    }
  }
  function listen(source, type) {
    source.addEventListener(type, (e) => {
      if (e.lastEventId) lastEventId = Math.max(lastEventId, Number(e.lastEventId));
      emit(type, JSON.parse(e.data));
    });
  }
  function on(type, fn) {
    if (!hooks.has(type)) {
      hooks.set(type, []);
      if (stream && !CALL_EVENTS.includes(type) && !type.startsWith("page.")) listen(stream, type);
    }
    hooks.get(type).push(fn);
  }
  window.gcdialPage = { csrf, canDial, api, el, td, notice, clock, words, on };

  function onEvent(type, e) {
    if (e.lastEventId) lastEventId = Math.max(lastEventId, Number(e.lastEventId));
    const data = JSON.parse(e.data);
    if (!data.call) return;
    const call = upsert(data.call, data.step || (type === "call.placing" ? "placing" : null));
    // Show the change at once; the filtered list is fetched again just after.
    const at = recentList.findIndex((c) => c.id === call.id);
    if (at >= 0) renderRecent(recentList.map((c, i) => (i === at ? call : c)));
    else if (!filterQuery()) renderRecent([call, ...recentList]);
    renderActive();
    renderAgents();
    refreshRecentSoon();
    if (call.id === myCallId) showMyCall(call, type, data);
    emit(type, data);
  }

  function openStream(after) {
    if (signedOut) return;
    if (stream) stream.close();
    stream = new EventSource("/v1/events?after=" + after);
    stream.addEventListener("open", () => {
      setLive("live", "live");
      if (wasDown) {
        wasDown = false;
        notice("Reconnected: live updates resumed after event " + lastEventId
          + ", nothing missed.", "info");
        loadAgents().catch(() => {});
        emit("page.reconnected", {});
      }
    });
    for (const type of CALL_EVENTS) stream.addEventListener(type, (e) => onEvent(type, e));
    for (const type of hooks.keys()) {
      if (!CALL_EVENTS.includes(type) && !type.startsWith("page.")) listen(stream, type);
    }
    stream.addEventListener("agent.updated", onAgentEvent);
    // The service ends the stream when the key is revoked or the session signed out.
    stream.addEventListener("stream.ended", (e) => showSignedOut(JSON.parse(e.data).message));
    stream.onerror = () => {
      wasDown = true;
      setLive("reconnecting…", "down");
      notice("Lost the connection to the service (it may be restarting). Reconnecting; "
        + "updates will resume where they stopped.");
      if (stream.readyState === EventSource.CLOSED) {
        setTimeout(() => {
          api("GET", "/page/session").then(() => openStream(lastEventId))
            .catch((err) => { if (err.status !== 401) setTimeout(() => openStream(lastEventId), 2000); });
        }, 1000);
      }
    };
  }

  async function hangUp(call) {
    try {
      await api("DELETE", "/v1/calls/" + encodeURIComponent(call.id));
      notice("Hang-up sent for the call to " + call.to + ".", "info");
    } catch (err) { notice("Could not hang up: " + err.message); }
  }

  // Click to dial ----------------------------------------------------------------------------
  let previewTimer = null;
  function previewSoon() {
    clearTimeout(previewTimer);
    pendingIdem = null; // other values: a new call, so a new idempotency key
    previewTimer = setTimeout(preview, 250);
  }
  async function preview() {
    const to = $("#dial-to").value.trim();
    const box = $("#preview");
    if (!to) { box.className = "preview"; box.textContent = "Type a number to see how it will be dialed."; return; }
    const country = $("#dial-country").value.trim() || "US";
    try {
      const p = await api("GET", "/page/number?" + new URLSearchParams({ to, country }));
      const zones = p.zones.map((z) => z.zone + " (" + z.weekday + " " + z.localTime + ")");
      box.className = "preview";
      box.replaceChildren(
        el("div", {}, "Will dial ", el("strong", { id: "preview-e164" }, p.e164)),
        el("div", {}, p.country + (p.place ? " · " + p.place : "")),
        el("div", {}, zones.length ? "Local time: " + zones.join(", ") : "Time zone unknown"));
    } catch (err) {
      box.className = "preview bad";
      box.textContent = "Not dialable: " + err.message;
    }
  }

  function newIdem() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  }

  function showMyCall(call, type, data) {
    const box = $("#dial-progress");
    box.hidden = false;
    let list = box.querySelector("ol");
    if (!list || box.dataset.call !== call.id) {
      box.dataset.call = call.id;
      list = el("ol", {});
      box.replaceChildren(el("div", {}, "Call ", el("code", {}, call.id), " to ", call.to), list);
    }
    let text = null;
    if (type === "answer") text = words(call.status) + (call.detail ? ": " + call.detail : "");
    else if (data && data.step) text = data.step;
    else if (TERMINAL.has(type)) text = "over: " + words(resultOf(call))
      + (call.detail ? " (" + call.detail + ")" : "");
    if (text && (!list.lastChild || list.lastChild.textContent !== text)) {
      list.append(el("li", {}, text));
    }
    box.querySelector("div").setAttribute("id", "dial-status");
  }

  async function submitDial(ev) {
    ev.preventDefault();
    const button = $("#dial-button");
    const body = { agent: $("#dial-agent").value.trim(), to: $("#dial-to").value.trim(),
                   defaultCountry: ($("#dial-country").value.trim() || "US").toUpperCase() };
    const caller = $("#dial-caller").value.trim();
    if (caller) body.callerId = caller;
    // The same key on a retry of this very form: a lost answer never rings twice.
    pendingIdem = pendingIdem || newIdem();
    button.disabled = true;
    button.textContent = "Calling…";
    try {
      const call = await api("POST", "/v1/calls", body, { "Idempotency-Key": pendingIdem });
      pendingIdem = null;
      myCallId = call.id;
      const merged = upsert(call, null);
      showMyCall(merged, "answer");
      renderActive();
      renderAgents();
      refreshRecentSoon();
      notice("");
    } catch (err) {
      const refused = err.data && err.data.call;
      if (refused) {
        // Refused before anything was sent (the agent not ready, ...): a 4xx with the call in it.
        pendingIdem = null;
        myCallId = refused.id;
        showMyCall(upsert(refused, null), "answer");
        refreshRecentSoon();
        notice("The call was refused, nothing was dialed: " + err.message);
        return;
      }
      if (err.status && err.status < 500 && err.status !== 409) pendingIdem = null;
      notice("The call was not sent: " + err.message
        + (pendingIdem ? " Sending again is safe: it cannot ring twice." : ""));
    } finally {
      button.disabled = false;
      button.textContent = "Call";
    }
  }

  // Start -----------------------------------------------------------------------------------
  async function start() {
    $("#signout").addEventListener("click", async () => {
      try { await api("POST", "/page/signout", {}); } finally { location.assign("/"); }
    });
    $("#filters").addEventListener("submit", (e) => { e.preventDefault(); refreshRecentSoon(); });
    $("#filters").addEventListener("change", refreshRecentSoon);
    if ($("#dial-form")) {
      $("#dial-form").addEventListener("submit", submitDial);
      for (const id of ["#dial-to", "#dial-country", "#dial-agent", "#dial-caller"]) {
        $(id).addEventListener("input", previewSoon);
      }
    }
    setInterval(() => {
      for (const t of document.querySelectorAll(".timer")) {
        t.textContent = duration((Date.now() - Date.parse(t.dataset.since)) / 1000);
      }
    }, 1000);
    try {
      lastEventId = await loadCalls();
      openStream(lastEventId);
      emit("page.ready", {});
      await Promise.all([loadQueues(), loadAgents()]);
    } catch (err) {
      if (!signedOut) notice("Could not load the page's data: " + err.message);
    }
  }
  start();
})();
