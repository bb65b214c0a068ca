// Loaded before require.js on pages that show widgets (see nb_ipywidgets_js in _config.yml).
// RequireJS reads a global `require` object as its configuration.
// - baseUrl: this folder. Pages live at different depths of the site, so take it from this
//   script's own URL.
// - paths: each widget module in embed-amd.js looks for its icon fonts in the folder of its
//   own RequireJS URL (webpack's publicPath), e.g. @jupyter-widgets/controls -> ./@jupyter-widgets/.
//   The fonts are in this folder, so map the module names here.
var require = {
  baseUrl: document.currentScript.src.replace(/[^/]*$/, ""),
  paths: { "@jupyter-widgets": ".", "@jupyter-widgets/html-manager/dist": "." },
};

// The widget views typeset their descriptions with the MathJax 2 API (MathJax.Hub.Queue) whenever
// a global MathJax exists; the book loads MathJax 3, which has no Hub, so pages with both maths and
// widgets failed with "Cannot read properties of undefined (reading 'Queue')". Whatever object
// MathJax is (Sphinx's configuration, then MathJax 3 itself), give it a Hub.Queue that asks
// MathJax 3 to typeset the page.
(function () {
  var current = window.MathJax;
  function withHub(mathjax) {
    if (mathjax && typeof mathjax === "object" && !mathjax.Hub) {
      mathjax.Hub = {
        Queue: function () {
          if (typeof mathjax.typesetPromise === "function") {
            mathjax.typesetPromise();
          }
        },
      };
    }
    return mathjax;
  }
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return withHub(current); },
    set: function (value) { current = value; },
  });
})();
