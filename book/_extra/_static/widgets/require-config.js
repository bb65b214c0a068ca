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
