// The rule tester, live: as you type, the results block is fetched again (debounced) from
// /rules/test/results. Without JavaScript the form still works as a plain GET.
(function () {
  "use strict";
  var form = document.getElementById("tester-form");
  var results = document.getElementById("tester-results");
  if (!form || !results || !window.fetch) { return; }
  var timer = null;
  var inflight = null;

  function params() {
    var data = new URLSearchParams(new FormData(form));
    if (data.get("q")) { data.delete("rule"); } else { data.delete("q"); }
    return data;
  }

  function refresh() {
    var data = params();
    if (inflight) { inflight.abort(); }
    inflight = new AbortController();
    var query = data.toString();
    window.history.replaceState(null, "", "/rules/test" + (query ? "?" + query : ""));
    results.setAttribute("aria-busy", "true");
    fetch("/rules/test/results?" + query, { signal: inflight.signal, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 204) { return null; }  // a newer keystroke took its place
        return response.text();
      })
      .then(function (html) {
        if (html !== null) { results.innerHTML = html; }  // server-rendered, escaped
        results.removeAttribute("aria-busy");
      })
      .catch(function (error) {
        if (error.name !== "AbortError") { results.removeAttribute("aria-busy"); }
      });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, 300);
  }

  document.getElementById("q").addEventListener("input", later);
  document.getElementById("rule").addEventListener("change", function () {
    if (this.value) { document.getElementById("q").value = ""; }
    refresh();
  });
  document.getElementById("since").addEventListener("change", refresh);
  form.addEventListener("submit", function (event) { event.preventDefault(); refresh(); });
}());
