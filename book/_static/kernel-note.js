// The book shows each notebook as it was executed: widgets keep their saved state, but their
// buttons and sliders have no Python kernel behind them. When a reader uses one, say so once,
// politely, and point to the launch buttons. (Jupyter Book adds this file to every page.)
(function () {
  "use strict";
  const CONTROLS = "button, input, select, textarea, .noUi-handle, .noUi-target";
  let note = null;

  function showNote() {
    if (note) {
      note.hidden = false;
      return;
    }
    note = document.createElement("div");
    note.className = "tltutor-kernel-note";
    note.setAttribute("role", "status");
    note.innerHTML =
      "<p><strong>This control needs a running notebook.</strong> The book shows the notebook as " +
      "it was run when the book was built; nothing here runs Python. Open the notebook with the " +
      "<i class='fas fa-rocket' aria-hidden='true'></i> launch button at the top of the page " +
      "(Colab, Binder or JupyterHub), or in JupyterLab on your machine, to use it.</p>";
    const close = document.createElement("button");
    close.type = "button";
    close.className = "tltutor-kernel-note-close";
    close.setAttribute("aria-label", "Close this note");
    close.textContent = "×";
    close.addEventListener("click", () => { note.hidden = true; });
    note.appendChild(close);
    document.body.appendChild(note);
  }

  document.addEventListener("pointerdown", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (target && target.closest(".jupyter-widgets") && target.closest(CONTROLS)) {
      showNote();
    }
  }, true);
})();
