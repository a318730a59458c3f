// Starts Swagger UI on /docs. A file rather than the inline script FastAPI's page has, so
// that the page's Content-Security-Policy needs no 'unsafe-inline' for scripts.
'use strict';

(() => {
  const script = document.currentScript;
  window.ui = SwaggerUIBundle({
    url: script.dataset.openapiUrl,
    dom_id: '#swagger-ui',
    // FastAPI's own defaults for its docs page.
    layout: 'BaseLayout',
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // Swagger UI would otherwise ask an online validator for a badge: nothing leaves the house.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
