(function () {
  "use strict";
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  var buttons = document.querySelectorAll("button[data-copy]");
  Array.prototype.forEach.call(buttons, function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById(button.getAttribute("data-status"));
    if (!source || !status) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.textContent;
      var said = function (message) {
        status.textContent = message;
        setTimeout(function () { status.textContent = ""; }, 4000);
      };
      var failed = function () {
        said(fallbackCopy(text) ? "Copied" : "Select the caption and copy it");
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(function () { said("Copied"); }, failed);
      } else {
        failed();
      }
    });
  });
})();
