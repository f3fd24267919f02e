// Starts Swagger UI (served from the installed swagger-ui-bundle package) on this site's OpenAPI document.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  if (!root || typeof window.SwaggerUIBundle !== "function") { return; }
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    validatorUrl: "none",  // never send the document to swagger.io's online validator
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    onComplete: function () {
      // Swagger UI leaves its server chooser without a name; screen readers would announce only "combo box".
      var servers = document.getElementById("servers");
      if (servers && !servers.getAttribute("aria-label")) servers.setAttribute("aria-label", "Server");
    },
  });
})();
