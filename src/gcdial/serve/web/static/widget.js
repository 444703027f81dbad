// gcdial click-to-dial widget. On a CRM page (an origin the service allows):
//   <script src="https://gcdial.example/widget.js" data-gcdial="country=US"></script>
// Every tel: link and every element marked data-gcdial-dial (its value, or its text, is the
// number) gets a Call button. A click signs the agent in the first time (a pop-up on the
// service's origin, Genesys Cloud's sign-in), then places the call with an Idempotency-Key made
// for that click and shows, in place, how it goes: ringing, talking, ended and why.
//
// What the browser holds: a widget token (in this script's memory only, never in storage),
// short-lived and accepted only from this page's origin. Never an API key, never a Genesys
// token. Styles live in a shadow root (constructed style sheets: no inline style for the host
// page's CSP to refuse), so the host page's styles and the widget's do not meet.
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src || window.__gcdialWidget) return;
  window.__gcdialWidget = true;
  var SERVICE = new URL(script.src).origin;
  var OPTIONS = {};
  (script.getAttribute("data-gcdial") || "").split(/[;\s]+/).forEach(function (pair) {
    var at = pair.indexOf("=");
    if (at > 0) OPTIONS[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  });
  var POLL_MS = 800;
  var STEPS = {
    placing: "Placing the call…",
    placed: "Ringing…",
    "agent ringing": "Your phone is ringing…",
    dialing: "Dialing…",
    "customer ringing": "Ringing…",
    talking: "Talking",
    "on hold": "On hold",
  };
  var CSS =
    ":host{display:inline-flex;align-items:center;gap:.4em;margin-left:.4em;" +
    "font:13px/1.3 system-ui,sans-serif;color:#1f2933;vertical-align:middle}" +
    "button{font:inherit;cursor:pointer;padding:.15em .7em;border:1px solid #0b6e4f;" +
    "border-radius:1em;background:#0b6e4f;color:#fff}" +
    "button:focus-visible{outline:3px solid #f0b429;outline-offset:2px}" +
    "button[aria-disabled=true]{background:#7b8794;border-color:#7b8794;cursor:default}" +
    ".status:empty{display:none}.status{max-width:32em}" +
    ".error{color:#a61b1b}.ended{color:#52606d}";

  var session = null; // {token, until (this browser's clock, in ms), agent}
  var hello = null; // the service's answer for this origin (a promise)
  var refusal = null; // its message, once known, when this origin is not allowed
  var sheet = null;

  function styleSheet() {
    if (sheet) return sheet;
    sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    return sheet;
  }

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map
      .call(bytes, function (b) {
        return (b + 256).toString(16).slice(1);
      })
      .join("");
  }

  function fresh() {
    return !!session && Date.now() < session.until - 5000;
  }

  // How long the token may still place calls, as the service counts it (the browser's clock
  // may differ from the service's): from the sign-in, then from every answer.
  function expiresIn(seconds) {
    var left = Number(seconds);
    if (session && seconds !== null && seconds !== "" && isFinite(left)) {
      session.until = Date.now() + left * 1000;
    }
  }

  function numberOf(element) {
    if (element.hasAttribute("data-gcdial-dial")) {
      return (element.getAttribute("data-gcdial-dial") || element.textContent || "").trim();
    }
    var href = element.getAttribute("href") || "";
    try {
      return decodeURIComponent(href.slice(4).split(";")[0]).trim();
    } catch (e) {
      return href.slice(4).trim();
    }
  }

  function show(entry, text, kind) {
    entry.status.textContent = text;
    entry.status.className = "status" + (kind ? " " + kind : "");
  }

  function setBusy(entry, busy) {
    entry.busy = busy;
    entry.button.setAttribute("aria-disabled", busy ? "true" : "false");
  }

  function sayHello() {
    if (!hello) {
      hello = fetch(SERVICE + "/widget/hello", { credentials: "omit" }).then(
        function (answer) {
          return answer.json().then(function (json) {
            if (!json.allowed) refusal = json.message || "This page may not use gcdial.";
            return json;
          });
        },
        function () {
          return { allowed: false, message: "The click-to-dial service cannot be reached." };
        }
      );
    }
    return hello;
  }

  // Opens the pop-up at once (it must happen inside the click, or it is blocked), then waits
  // for its one message: from the service's origin, from that window.
  function signIn() {
    var url = SERVICE + "/widget/signin?origin=" + encodeURIComponent(location.origin);
    var popup = window.open(url, "gcdial-signin", "popup,width=520,height=640");
    if (!popup) {
      return Promise.reject(new Error("Allow pop-ups for this page to sign in to gcdial."));
    }
    return new Promise(function (resolve, reject) {
      var done = false;
      function finish(error, value) {
        if (done) return;
        done = true;
        window.removeEventListener("message", onMessage);
        clearInterval(watch);
        if (error) reject(error);
        else resolve(value);
      }
      function onMessage(event) {
        if (event.origin !== SERVICE || event.source !== popup) return;
        var data = event.data || {};
        if (data.type !== "gcdial:signin") return;
        if (!data.ok) {
          finish(new Error(data.message || "The sign-in was refused."));
          return;
        }
        var left =
          typeof data.expiresIn === "number" ? data.expiresIn : data.expiresAt - Date.now() / 1000;
        finish(null, { token: data.token, until: Date.now() + left * 1000, agent: data.agent });
      }
      window.addEventListener("message", onMessage);
      var watch = setInterval(function () {
        if (!popup.closed) return;
        // A message posted just before the window closed may still be on its way.
        setTimeout(function () {
          finish(new Error("The sign-in window was closed before you signed in."));
        }, 300);
      }, 400);
    });
  }

  function api(method, path, body, key) {
    var headers = { Authorization: "Bearer " + session.token };
    if (body) headers["Content-Type"] = "application/json";
    if (key) headers["Idempotency-Key"] = key;
    return fetch(SERVICE + path, {
      method: method,
      headers: headers,
      body: body ? JSON.stringify(body) : undefined,
      credentials: "omit",
    }).then(function (answer) {
      expiresIn(answer.headers.get("Gcdial-Session-Expires-In"));
      return answer.json().then(
        function (json) {
          return { status: answer.status, body: json };
        },
        function () {
          return { status: answer.status, body: {} };
        }
      );
    });
  }

  // The service's error shape: {"error": {"type", "message", "hint", "path"}}.
  function problem(answer, fallback) {
    var error = (answer.body && answer.body.error) || {};
    return error.message || fallback;
  }

  function ended(call) {
    var how = call.outcome ? call.outcome.replace(/_/g, " ") : call.status.replace(/_/g, " ");
    var text = "Ended: " + how + (call.detail ? " (" + call.detail + ")" : "");
    if (!fresh()) text += ". Sign in again for the next call.";
    return text;
  }

  function follow(entry, id, current) {
    var call = current;
    function step() {
      if (call.ended) {
        show(entry, ended(call), "ended");
        setBusy(entry, false);
        return;
      }
      show(entry, STEPS[call.step] || STEPS[call.status] || "Calling…");
      setTimeout(function () {
        api("GET", "/v1/calls/" + encodeURIComponent(id) + "?expand=progress").then(
          function (answer) {
            if (answer.status === 200) {
              call = answer.body;
              step();
              return;
            }
            if (answer.status === 401) session = null;
            show(entry, problem(answer, "The call can no longer be followed.") +
              " Sign in again for the next call.", "error");
            setBusy(entry, false);
          },
          function () {
            step(); // a network blip: ask again
          }
        );
      }, POLL_MS);
    }
    step();
  }

  function wait(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  // The same click's request again, with its key, after a network failure or while the first
  // is still being placed: the service answers a retry of a key as it answered the first time,
  // so a retry never rings twice.
  function post(body, key, tries) {
    return api("POST", "/v1/calls", body, key).then(
      function (answer) {
        var type = answer.body && answer.body.error && answer.body.error.type;
        if (answer.status === 409 && type === "idempotency_key_in_progress" && tries < 10) {
          return wait(1000).then(function () {
            return post(body, key, tries + 1);
          });
        }
        return answer;
      },
      function () {
        if (tries >= 3) {
          throw new Error(
            "The click-to-dial service could not be reached; the call may have been placed:" +
              " check before calling again."
          );
        }
        return wait(500 * (tries + 1)).then(function () {
          return post(body, key, tries + 1);
        });
      }
    );
  }

  function place(entry, key) {
    var body = { agent: session.agent.email, to: entry.number };
    if (OPTIONS.country) body.defaultCountry = OPTIONS.country.toUpperCase();
    show(entry, "Placing the call…");
    return post(body, key, 0).then(function (answer) {
      if (answer.status === 202 || answer.status === 200) {
        follow(entry, answer.body.id, answer.body);
        return;
      }
      if (answer.status === 401) session = null;
      var message = problem(answer, "The call was refused (HTTP " + answer.status + ").");
      show(entry, message + (answer.status === 401 ? " Click Call to sign in again." : ""), "error");
      setBusy(entry, false);
    });
  }

  function onCall(entry, event) {
    if (event) event.preventDefault();
    if (entry.busy) return; // a double click is one call
    if (refusal) {
      show(entry, refusal, "error"); // no pop-up, no session
      return;
    }
    setBusy(entry, true);
    var key = newKey(); // one per click: a retry of this click would reuse it
    var signing = fresh() ? null : signIn();
    if (signing) show(entry, "Sign in to Genesys Cloud in the pop-up…");
    sayHello()
      .then(function (answer) {
        if (!answer.allowed) throw new Error(answer.message || "This page may not use gcdial.");
        return signing;
      })
      .then(function (signedIn) {
        if (signedIn) session = signedIn;
        return place(entry, key);
      })
      .catch(function (error) {
        show(entry, error.message || String(error), "error");
        setBusy(entry, false);
      });
  }

  function attach(element) {
    if (element.__gcdial) return;
    var number = numberOf(element);
    if (!number) return;
    var host = document.createElement("span");
    host.setAttribute("data-gcdial-widget", "");
    var root = host.attachShadow({ mode: "open" });
    root.adoptedStyleSheets = [styleSheet()];
    var button = document.createElement("button");
    button.type = "button";
    button.textContent = "Call";
    button.setAttribute("aria-label", "Call " + number);
    var status = document.createElement("span");
    status.className = "status";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    root.append(button, status);
    var entry = { number: number, button: button, status: status, busy: false };
    element.__gcdial = entry;
    button.addEventListener("click", function (event) {
      onCall(entry, event);
    });
    if (element.tagName === "A") {
      element.addEventListener("click", function (event) {
        onCall(entry, event);
      });
    }
    element.insertAdjacentElement("afterend", host);
  }

  function scan(root) {
    root.querySelectorAll('a[href^="tel:"], [data-gcdial-dial]').forEach(attach);
  }

  function start() {
    sayHello();
    scan(document);
    new MutationObserver(function (changes) {
      changes.forEach(function (change) {
        change.addedNodes.forEach(function (node) {
          if (node.nodeType !== 1) return;
          if (node.matches('a[href^="tel:"], [data-gcdial-dial]')) attach(node);
          scan(node);
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
