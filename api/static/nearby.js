// "Use my location": the browser's geolocation, asked only when the customer presses the button.
// Without script the button stays hidden and the typed postcode or city still works.
(function () {
  "use strict";
  function setUp(form) {
    var ask = form.querySelector('[data-geo="ask"]');
    var lat = form.querySelector('[data-geo="lat"]');
    var lon = form.querySelector('[data-geo="lon"]');
    var status = form.querySelector('[data-geo="status"]');
    var submitAfter = form.getAttribute("data-geo-submit") !== "no";
    if (!ask || !lat || !lon || !("geolocation" in navigator)) return;
    ask.hidden = false;
    ask.addEventListener("click", function () {
      if (status) status.textContent = "Asking your browser for your location…";
      navigator.geolocation.getCurrentPosition(
        function (position) {
          lat.value = position.coords.latitude.toFixed(3);
          lon.value = position.coords.longitude.toFixed(3);
          var place = form.querySelector('input[name="place"]');
          if (place) place.value = "";
          if (status) status.textContent = "Your location will be used to show nearby stores.";
          if (submitAfter) form.submit();
        },
        function (error) {
          lat.value = "";
          lon.value = "";
          if (status) {
            status.textContent = error.code === 1
              ? "You did not allow your location: type a postcode or a city instead."
              : "Your location could not be found: type a postcode or a city instead.";
          }
        },
        { enableHighAccuracy: false, timeout: 10000, maximumAge: 600000 }
      );
    });
  }
  document.querySelectorAll("form").forEach(function (form) {
    if (form.querySelector('[data-geo="ask"]')) setUp(form);
  });
})();
