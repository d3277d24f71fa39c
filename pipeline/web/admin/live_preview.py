"""The Write page's preview as you type: a few lines of plain script, allowed by their hash.

Without script the Preview button posts the form and the page comes back with
the email under it. With script, :data:`LIVE_PREVIEW_SCRIPT` posts the same
form to the same route 800 ms after the last keystroke, takes the preview out
of the page that comes back, and puts it in place (a polite live region, so a
screen reader hears that it changed without losing its place). Nothing is
saved: that route only renders. The page's Content-Security-Policy allows
this one script by its hash and requests to this site only, as the campaign
page does for its live counts.
"""

from __future__ import annotations

from pipeline.web.security import policy_allowing

#: Posts the form (urlencoded, as the button does) and swaps in the fresh preview.
LIVE_PREVIEW_SCRIPT = """
(function () {
  var form = document.querySelector("form[data-preview-url]");
  var target = document.getElementById("live-preview");
  if (!form || !target || !window.fetch || !window.DOMParser) { return; }
  var timer = null;
  var asked = 0;
  function refresh() {
    var ask = ++asked;
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST",
      credentials: "same-origin",
      body: new URLSearchParams(new FormData(form))
    }).then(function (answer) { return answer.text(); }).then(function (html) {
      if (ask !== asked) { return; }
      var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("live-preview");
      if (fresh && fresh.children.length) { target.innerHTML = fresh.innerHTML; }
    });
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 800);
  });
})();
"""
#: The site's policy plus that one script and requests to this site.
EDITOR_PAGE_POLICY = policy_allowing(LIVE_PREVIEW_SCRIPT)
