// gcdial live page, Review panel: calls and campaign attempts whose outcome is unknown (with the
// evidence gathered, and a verdict with a confirm step), and contacts pinned to an agent who is
// gone (with a reassign control). Uses page.js's helpers (window.gcdialPage); no library.
"use strict";
(function () {
  const page = window.gcdialPage;
  if (!page || !document.querySelector("#review")) return;
  const { api, el, notice, clock, words, on } = page;
  const $ = (sel) => document.querySelector(sel);
  let loading = null;
  let again = false;

  // One load at a time; a change seen meanwhile loads once more afterwards.
  function load() {
    if (loading) { again = true; return loading; }
    loading = refresh().catch((err) => {
      if (err.status !== 401) $("#review").replaceChildren(
        el("p", { class: "bad" }, "Could not load the review list: " + err.message));
    }).finally(() => {
      loading = null;
      if (again) { again = false; load(); }
    });
    return loading;
  }

  // A refresh must not take a verdict out of a supervisor's hands: an item whose note is being
  // written, whose confirm step is open, or that holds the focus stays as it is (an event on
  // another item used to rebuild it, and a typed note was lost).
  function itemKey(node) {
    return node.dataset.call ? "call " + node.dataset.call
      : "attempt " + node.dataset.campaign + " " + node.dataset.attempt;
  }
  function inUse(node) {
    const note = node.querySelector("input[type=text]");
    const confirmBox = node.querySelector(".confirm");
    return Boolean((note && note.value.trim()) || (confirmBox && !confirmBox.hidden)
      || node.contains(document.activeElement));
  }
  function keepInUse(items) {
    const kept = new Map([...document.querySelectorAll("#review .review-item")]
      .filter(inUse).map((node) => [itemKey(node), node]));
    return items.map((item) => kept.get(itemKey(item)) || item);
  }

  async function refresh() {
    const data = await api("GET", "/v1/review");
    const items = [
      ...data.unknown.map((item) => callItem(item, data.canDial)),
      ...data.campaigns.flatMap((review) => review.unknown.map((item) =>
        attemptItem(review, item))),
    ];
    $("#review").replaceChildren(...(items.length ? keepInUse(items)
      : [el("p", { class: "muted" }, "Nothing to review.")]));
    const pinned = data.campaigns.flatMap((review) => review.pinned.filter((p) => p.gone)
      .map((p) => pinnedItem(review, p)));
    $("#pinned").replaceChildren(...(pinned.length ? pinned
      : [el("p", { class: "muted" }, "No contact waits for an agent who is gone.")]));
    const unwrapped = data.campaigns.flatMap((review) => (review.wrapupsMissing || [])
      .map((item) => el("article", { class: "item", "data-attempt": item.attemptId },
        el("strong", {}, review.campaign.name + ", line " + item.contact.line),
        " " + item.contact.phone + ": no wrap-up arrived for call "
          + (item.attempt.conversationId || "?") + " (" + (item.attempt.outcome || "?") + ", "
          + item.attempt.agent + ", " + item.attempt.at + ")")));
    const wrapups = $("#wrapups-missing");
    if (wrapups) {
      wrapups.replaceChildren(...(unwrapped.length ? unwrapped
        : [el("p", { class: "muted" }, "Every call waited for got its wrap-up.")]));
    }
    const counts = $("#review-counts");
    if (counts) {
      counts.textContent = "(" + items.length + " unknown, " + pinned.length + " pinned, "
        + unwrapped.length + " without wrap-up)";
    }
  }

  // What was recorded, said where the item was (it leaves the list), and focused, so that
  // whoever recorded it, by mouse or keyboard, sees it without looking elsewhere.
  function recorded(text) {
    const box = $("#review-done");
    box.textContent = text;
    box.hidden = false;
    box.focus();
  }

  // The verdict buttons; a choice asks for confirmation before anything is recorded. ``after``
  // says, per verdict, what recording it does to the call or contact.
  function verdictControls(label, send, enabled, why, after) {
    const out = el("div", { class: "small verdict-result", role: "status", "aria-live": "polite" });
    const note = el("input", { type: "text", maxlength: 500, placeholder: "what you checked",
      "aria-label": "Note for " + label });
    const confirmBox = el("div", { class: "confirm row", hidden: true });
    const choices = el("div", { class: "row" }, note);
    function ask(verdict) {
      const text = verdict === "placed"
        ? "Record that the call to " + label + " rang (placed)? It will not be dialed again."
        : "Record that the call to " + label + " never rang (not placed)? It may be dialed again.";
      const yes = el("button", { type: "button", class: verdict === "placed" ? "" : "danger",
        onclick: () => decide(verdict, yes) }, "Confirm");
      const no = el("button", { type: "button", class: "quiet", onclick: () => {
        confirmBox.hidden = true; choices.hidden = false; choices.querySelector("button").focus();
      } }, "Cancel");
      confirmBox.replaceChildren(el("span", {}, text), yes, no);
      choices.hidden = true;
      confirmBox.hidden = false;
      yes.focus();
    }
    async function decide(verdict, button) {
      button.disabled = true;
      try {
        await send({ verdict, note: note.value.trim() });
        const text = "Verdict recorded: the call to " + label + " "
          + (verdict === "placed" ? "did ring (placed). " : "never rang (not placed). ")
          + after[verdict];
        notice(text, "info");
        recorded(text);
        load();
      } catch (err) {
        out.textContent = err.message;
        out.className = "small verdict-result bad";
        if (err.status === 409) notice("Not recorded: " + err.message);
        confirmBox.hidden = true;
        setTimeout(load, err.status === 409 ? 4000 : 0);
      }
    }
    if (!enabled) return el("div", {}, el("p", { class: "muted small" }, why));
    choices.append(
      el("button", { type: "button", onclick: () => ask("placed") }, "It rang (placed)"),
      el("button", { type: "button", class: "quiet", onclick: () => ask("not_placed") },
        "It never rang (not placed)"));
    return el("div", {}, choices, confirmBox, out);
  }

  function callItem(item, canDial) {
    const c = item.call;
    const evidence = [
      el("li", {}, "What the service knows: " + (c.detail || "nothing more")),
      el("li", {}, "Requested: agent " + item.request.agent + ", number " + item.request.to
        + (item.request.callerId ? ", caller id " + item.request.callerId : "")),
      ...item.events.map((e) => el("li", {}, clock(e.at) + " " + e.type
        + (e.progress ? " (" + e.progress.event + ")" : ""))),
      ...item.audit.map((a) => el("li", {}, clock(a.at) + " audit: " + a.action + " " + a.result
        + " by key " + a.key + (a.detail ? " (" + a.detail + ")" : ""))),
    ];
    const send = (body) => api("POST", "/v1/calls/" + encodeURIComponent(c.id)
      + "/verdict", body);
    return el("article", { class: "review-item", "data-call": c.id, "aria-label": "Call to " + c.to },
      el("div", {}, el("strong", {}, c.to), " for ", c.agent, " · started ", clock(c.createdAt),
        " · key ", c.keyName || ""),
      el("ul", {}, ...evidence),
      verdictControls(c.to, send, canDial,
        "Your key has no dial scope: it can see, not record, verdicts.", {
          placed: "It is marked placed and will not be dialed again.",
          not_placed: "It is marked not placed; nothing is dialed for it: place it again if "
            + "the customer still needs the call.",
        }));
  }

  function attemptItem(review, item) {
    const m = review.campaign;
    const who = item.contact;
    const evidence = [
      el("li", {}, "What the campaign knows: " + (who.detail || "nothing more")),
      ...item.attempts.map((a) => el("li", {}, "attempt " + a.number + " at " + clock(a.at) + " by "
        + (a.agent || "?") + ": " + words(a.state)
        + (a.conversationId ? ", conversation " + a.conversationId : "")
        + (a.errorCode ? ", " + a.errorCode : "") + (a.detail ? " (" + a.detail + ")" : ""))),
      ...item.events.map((e) => el("li", {}, clock(e.at) + " " + e.kind
        + (e.detail ? ": " + e.detail : ""))),
    ];
    const path = "/v1/campaigns/" + encodeURIComponent(m.id) + "/attempts/"
      + item.attemptId + "/verdict";
    return el("article", { class: "review-item", "data-campaign": m.id,
      "data-attempt": String(item.attemptId), "aria-label": "Campaign " + m.name + " line "
        + who.line },
      el("div", {}, el("strong", {}, who.phone), who.name ? " (" + who.name + ")" : "",
        " · campaign ", el("strong", {}, m.name), " · line " + who.line,
        " · ", el("span", { class: "step" }, m.state)),
      el("ul", {}, ...evidence),
      verdictControls(who.phone, (body) => api("POST", path, body), review.reviewable,
        "The campaign is " + m.state + ": pause it to record a verdict.", {
          placed: "Line " + who.line + " of campaign " + m.name + " is settled as placed.",
          not_placed: "Line " + who.line + " of campaign " + m.name + " is back in the queue, "
            + "without using up an attempt: it is dialed again when the campaign resumes.",
        }));
  }

  function pinnedItem(review, pinned) {
    const m = review.campaign;
    const out = el("div", { class: "small", role: "status", "aria-live": "polite" });
    const id = "to-" + m.id + "-" + pinned.agent.replace(/[^A-Za-z0-9]/g, "_");
    const targets = m.agents.filter((a) => a.toLowerCase() !== pinned.agent.toLowerCase());
    const select = el("select", { id },
      el("option", { value: "any" }, "any agent (whoever is free)"),
      ...targets.map((a) => el("option", { value: a }, a)));
    async function apply(button) {
      button.disabled = true;
      try {
        const done = await api("POST", "/v1/campaigns/" + encodeURIComponent(m.id)
          + "/reassign", { from: pinned.agent, to: select.value });
        notice(done.moved + " contact(s) of " + pinned.agent + " in campaign " + m.name
          + " now go to " + (done.to === "any" ? "any agent" : done.to)
          + ". Resume the campaign to dial them.", "info");
        load();
      } catch (err) {
        out.textContent = err.message;
        out.className = "small bad";
        button.disabled = false;
        if (err.status === 409) setTimeout(load, 4000);
      }
    }
    const controls = review.reviewable
      ? el("div", { class: "row" }, el("label", { for: id }, "Give them to"), select,
        el("button", { type: "button", onclick: (e) => apply(e.target) }, "Reassign"))
      : el("p", { class: "muted small" }, "The campaign is " + m.state
        + ": pause it to reassign.");
    return el("article", { class: "review-item pinned", "data-campaign": m.id,
      "data-agent": pinned.agent },
      el("div", {}, el("strong", {}, pinned.contacts + " contact(s)"), " pinned to ",
        el("strong", {}, pinned.agent), " · campaign ", el("strong", {}, m.name)),
      el("p", { class: "muted small" }, pinned.agent + " was not in the last run's pool "
        + "(retired, missing, or not one of the campaign's agents): these contacts wait."),
      controls, out);
  }

  let soon = null;
  function loadSoon() {
    clearTimeout(soon);
    soon = setTimeout(load, 1000);
  }
  for (const type of ["page.ready", "page.reconnected", "call.unknown", "call.verdict",
    "campaign.verdict", "campaign.reassigned"]) on(type, load);
  on("campaign.updated", loadSoon);
  // Campaigns change state (paused, new unknowns) without a call event: look again now and then.
  setInterval(() => { if (!document.hidden) load(); }, 15000);
})();
