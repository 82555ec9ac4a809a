// Search as you type: titles from the autocomplete API under the search box, each a link to its
// article. The form works without this script (a plain GET search of the list).
(function () {
  "use strict";
  var form = document.querySelector("form[data-autocomplete]");
  if (!form || !window.fetch) return;
  var input = form.querySelector("input[name=q]");
  var list = document.getElementById("article-suggestions");
  var count = document.getElementById("suggestion-count");
  var pending = null;
  var timer = null;

  function hide() {
    list.hidden = true;
    list.replaceChildren();
  }

  function show(results) {
    list.replaceChildren();
    results.forEach(function (suggestion) {
      var link = document.createElement("a");
      link.href = form.dataset.detail.replace("SLUG", encodeURIComponent(suggestion.slug));
      link.textContent = suggestion.title;
      var item = document.createElement("li");
      item.appendChild(link);
      list.appendChild(item);
    });
    list.hidden = results.length === 0;
    count.textContent = results.length ? results.length + " suggestions; press the down arrow to reach them." : "No suggestions.";
  }

  function lookup() {
    var q = input.value.trim();
    if (pending) pending.abort();
    if (!q) { hide(); return; }
    pending = new AbortController();
    fetch(form.dataset.autocomplete + "?q=" + encodeURIComponent(q), {
      headers: { Accept: "application/json" },
      signal: pending.signal,
    })
      .then(function (response) { return response.ok ? response.json() : { results: [] }; })
      .then(function (body) { if (input.value.trim() === q) show(body.results || []); })
      .catch(function (error) { if (error.name !== "AbortError") hide(); });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(lookup, 120);
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "ArrowDown" && !list.hidden) {
      event.preventDefault();
      list.querySelector("a").focus();
    } else if (event.key === "Escape") {
      hide();
    }
  });
  list.addEventListener("keydown", function (event) {
    var links = Array.prototype.slice.call(list.querySelectorAll("a"));
    var at = links.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && at < links.length - 1) { event.preventDefault(); links[at + 1].focus(); }
    else if (event.key === "ArrowUp") { event.preventDefault(); (at > 0 ? links[at - 1] : input).focus(); }
    else if (event.key === "Escape") { hide(); input.focus(); }
  });
  document.addEventListener("click", function (event) {
    if (!form.parentNode.contains(event.target)) hide();
  });
})();
