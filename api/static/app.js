// Small helpers; every page works without them.
(function () {
  // Upload form: refuse a wrong type or an oversized file before sending it.
  var form = document.getElementById("request-form");
  if (form) {
    var inputs = [document.getElementById("photo"), document.getElementById("photo-camera")];
    var error = document.getElementById("photo-error"), max = parseInt(form.dataset.maxBytes, 10);
    var chosen = function () {
      for (var i = 0; i < inputs.length; i++) if (inputs[i] && inputs[i].files && inputs[i].files[0]) return inputs[i].files[0];
      return null;
    };
    var check = function (submitting) {
      var file = chosen(), message = "";
      if (!file && submitting) message = "Please choose a photo of the product, or take one.";
      else if (file && file.size > max) message = "This photo is " + (file.size / 1e6).toFixed(1) + " MB; the limit is " + Math.round(max / 1e6) + " MB.";
      else if (file && file.type && file.type.indexOf("image/") !== 0) message = "This file is not a photo (" + file.type + ").";
      error.textContent = message; error.hidden = !message;
      return !message;
    };
    inputs.forEach(function (input) { if (input) input.addEventListener("change", function () { check(false); }); });
    form.addEventListener("submit", function (event) { if (!check(true)) event.preventDefault(); });
  }
  // Workbench: drag a box on the customer photo to fill the crop fields (fractions of the image).
  var frame = document.getElementById("crop-frame"), box = document.getElementById("crop-box");
  var fields = ["x", "y", "w", "h"].map(function (n) { return document.getElementById("crop-" + n); });
  if (frame && box && fields[0]) {
    var start = null;
    var point = function (event) {
      var rect = frame.getBoundingClientRect();
      return { x: Math.min(Math.max((event.clientX - rect.left) / rect.width, 0), 1),
               y: Math.min(Math.max((event.clientY - rect.top) / rect.height, 0), 1) };
    };
    var draw = function (a, b) {
      var x = Math.min(a.x, b.x), y = Math.min(a.y, b.y), w = Math.abs(a.x - b.x), h = Math.abs(a.y - b.y);
      box.hidden = false;
      box.style.left = x * 100 + "%"; box.style.top = y * 100 + "%";
      box.style.width = w * 100 + "%"; box.style.height = h * 100 + "%";
      return [x, y, w, h];
    };
    frame.addEventListener("pointerdown", function (event) { start = point(event); frame.setPointerCapture(event.pointerId); event.preventDefault(); });
    frame.addEventListener("pointermove", function (event) { if (start) draw(start, point(event)); });
    frame.addEventListener("pointerup", function (event) {
      if (!start) return;
      var values = draw(start, point(event)); start = null;
      if (values[2] < 0.02 || values[3] < 0.02) { box.hidden = true; fields.forEach(function (f) { f.value = ""; }); return; }
      fields.forEach(function (f, i) { f.value = values[i].toFixed(3); });
    });
    if (fields[2].value) draw({ x: +fields[0].value, y: +fields[1].value }, { x: +fields[0].value + +fields[2].value, y: +fields[1].value + +fields[3].value });
  }
  // Request page: look for news every 20 s; reload when something changed and nothing is being typed.
  var head = document.getElementById("request-head");
  if (head && window.fetch) {
    var poll = function () {
      fetch("/api/requests/" + encodeURIComponent(head.dataset.token), { headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data) return;
          var changed = data.status !== head.dataset.status || String(data.offers.length) !== head.dataset.offers ||
            String(data.messages.length) !== head.dataset.messages;
          var typing = Array.prototype.some.call(document.querySelectorAll("textarea, input[name=card_number]"), function (f) { return f.value; });
          if (changed && !typing) window.location.reload();
        })
        .catch(function () {});
    };
    if (["closed", "cancelled", "expired", "fulfilled"].indexOf(head.dataset.status) < 0) setInterval(poll, 20000);
  }
})();
