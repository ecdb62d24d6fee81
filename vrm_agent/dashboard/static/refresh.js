// Keeps a list on the page current without a reload: asks the dashboard every few seconds for
// a short tag of what the list shows, and when the tag changes fetches the page and swaps in
// the new list. Without script the page still works; reloading shows the same.
(function () {
  "use strict";
  var live = document.getElementById("live");
  if (!live || !window.fetch || !window.DOMParser) { return; }
  var tag = live.getAttribute("data-version");
  var source = live.getAttribute("data-version-url");
  var every = Math.max(1000, parseInt(live.getAttribute("data-every"), 10) || 5000);

  function typing() {
    // Never swap the list from under a form the person is filling in.
    var active = document.activeElement;
    return active && live.contains(active) && active.tagName !== "BUTTON";
  }

  function swap() {
    return fetch(window.location.href, { credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!fresh) { return; }
        live.replaceChildren.apply(live, Array.prototype.slice.call(fresh.childNodes)
          .map(function (node) { return document.importNode(node, true); }));
        tag = fresh.getAttribute("data-version");
        live.setAttribute("data-version", tag);
      });
  }

  function poll() {
    fetch(source, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (now) {
        if (now !== null && now !== tag && !typing()) { return swap(); }
      })
      .catch(function () { /* the daemon may be restarting: try again later */ })
      .then(function () { window.setTimeout(poll, every); });
  }

  window.setTimeout(poll, every);
})();
