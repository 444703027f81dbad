// The widget's sign-in window, at its end: hand the result to the CRM page that opened it, to
// its origin only (postMessage's targetOrigin), then close when it went well.
(function () {
  "use strict";
  var node = document.getElementById("gcdial-signin-result");
  if (!node || !window.opener) return;
  var result = JSON.parse(node.textContent);
  window.opener.postMessage(result.message, result.origin);
  if (result.message.ok) window.close();
})();
