// Small helpers; every page works without them.
(function () {
  // Upload form: one photo input (camera or gallery), a preview, drag-and-drop and paste; a big photo is
  // made smaller here before sending (phones take 12-48 megapixel shots; search needs far less), and a
  // wrong type or an oversized file is refused before the upload.
  var form = document.getElementById("request-form");
  if (form) {
    var input = document.getElementById("photo"), error = document.getElementById("photo-error");
    var preview = document.getElementById("photo-preview"), status = document.getElementById("photo-status");
    var zone = document.getElementById("drop-zone"), max = parseInt(form.dataset.maxBytes, 10);
    var LONG_SIDE = 2048, SHRINK_ABOVE = 1500000;  // bytes: smaller photos are sent as they are
    var showError = function (message) { error.textContent = message; error.hidden = !message; };
    var check = function (submitting) {
      var file = input.files && input.files[0], message = "";
      if (!file && submitting) message = "Please choose a photo of the product, or take one.";
      else if (file && file.size > max) message = "This photo is " + (file.size / 1e6).toFixed(1) + " MB; the limit is " + Math.round(max / 1e6) + " MB.";
      else if (file && file.type && file.type.indexOf("image/") !== 0) message = "This file is not a photo (" + file.type + ").";
      showError(message);
      return !message;
    };
    var put = function (file) {  // make `file` the input's file (DataTransfer is how scripts fill a file input)
      if (!window.DataTransfer) return false;
      var transfer = new DataTransfer(); transfer.items.add(file); input.files = transfer.files;
      return true;
    };
    var show = function (file) {
      if (!file || !preview || file.type.indexOf("image/") !== 0) { if (preview) preview.hidden = true; return; }
      var reader = new FileReader();
      reader.onload = function () { preview.src = reader.result; preview.hidden = false; };
      reader.readAsDataURL(file);
    };
    var shrink = function (file, done) {  // a JPEG at most LONG_SIDE px long; the original when that fails (HEIC...)
      if (!file || file.size <= SHRINK_ABOVE || file.type.indexOf("image/") !== 0 || !window.createImageBitmap) return done(file, false);
      createImageBitmap(file).then(function (bitmap) {
        var scale = Math.min(1, LONG_SIDE / Math.max(bitmap.width, bitmap.height));
        var canvas = document.createElement("canvas");
        canvas.width = Math.round(bitmap.width * scale); canvas.height = Math.round(bitmap.height * scale);
        canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
        canvas.toBlob(function (blob) {
          if (!blob || blob.size >= file.size) return done(file, false);
          var name = (file.name || "photo").replace(/\.[^.]*$/, "") + ".jpg";
          done(new File([blob], name, { type: "image/jpeg" }), true);
        }, "image/jpeg", 0.9);
      }).catch(function () { done(file, false); });
    };
    var busy = false;
    var use = function (file, fromInput) {
      if (!file) return;
      busy = true; status.textContent = "Preparing your photo…";
      shrink(file, function (chosen, shrunk) {
        if ((shrunk || !fromInput) && !put(chosen)) chosen = file;
        busy = false;
        status.textContent = shrunk ? "Made smaller for sending: " + (file.size / 1e6).toFixed(1) + " MB → " + (chosen.size / 1e6).toFixed(1) + " MB." : "";
        show(chosen); check(false);
      });
    };
    input.addEventListener("change", function () { use(input.files && input.files[0], true); });
    if (zone) {
      ["dragenter", "dragover"].forEach(function (name) { zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("dragging"); }); });
      ["dragleave", "drop"].forEach(function (name) { zone.addEventListener(name, function () { zone.classList.remove("dragging"); }); });
      zone.addEventListener("drop", function (event) {
        event.preventDefault();
        var files = event.dataTransfer && event.dataTransfer.files;
        if (files && files[0]) use(files[0], false);
      });
    }
    document.addEventListener("paste", function (event) {
      var files = event.clipboardData && event.clipboardData.files;
      if (files && files[0] && files[0].type.indexOf("image/") === 0) { event.preventDefault(); use(files[0], false); }
    });
    form.addEventListener("submit", function (event) {
      if (busy) { event.preventDefault(); status.textContent = "Still preparing your photo: one moment, then send again."; return; }
      if (!check(true)) event.preventDefault();
    });
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
  // Operator lists: refresh the counts in place every 30 s and say what changed in a polite live
  // region (a page that reloads itself loses the reader's place and focus).
  var lists = document.getElementById("operator-lists"), live = document.getElementById("live-counts");
  if (lists && live && window.fetch) {
    var refreshCounts = function () {
      fetch(lists.dataset.countsUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (counts) {
          if (!counts) return;
          var news = [];
          Array.prototype.forEach.call(lists.querySelectorAll("[data-count]"), function (badge) {
            var name = badge.dataset.count, before = parseInt(badge.textContent, 10), after = counts[name];
            if (typeof after !== "number" || after === before) return;
            badge.textContent = String(after);
            var title = badge.parentNode.firstChild.textContent.trim();
            news.push(title + ": " + after + " (was " + before + ")");
          });
          if (news.length) live.textContent = "Updated " + new Date().toLocaleTimeString() + ". " + news.join("; ") + ". Reload the list to see the requests.";
        })
        .catch(function () {});
    };
    setInterval(refreshCounts, parseInt(lists.dataset.every || "30000", 10));
  }
  // Times: the server writes UTC; show each in the reader's own time zone (the UTC text stays as the title).
  Array.prototype.forEach.call(document.querySelectorAll("time[datetime][data-local]"), function (node) {
    var moment = new Date(node.getAttribute("datetime"));
    if (isNaN(moment.getTime())) return;
    node.title = node.textContent;
    node.textContent = moment.toLocaleString([], { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  });
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
