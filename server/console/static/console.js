// Tact console: refreshes every element marked data-refresh="URL" every
// data-every milliseconds with the HTML fragment at URL. No framework; the
// page works without it (reload to refresh).
"use strict";
document.querySelectorAll("[data-refresh]").forEach(function (el) {
  var every = parseInt(el.getAttribute("data-every"), 10) || 5000;
  var url = el.getAttribute("data-refresh");
  setInterval(function () {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401) { window.location.assign("/console/login"); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null) { el.innerHTML = html; } })
      .catch(function () { /* tactd restarting: try again at the next tick */ });
  }, every);
});
