/* wallboard: the one DOM helper the board's and the editor's scripts share (window.WB.el). */
(function () {
  "use strict";
  var WB = (window.WB = window.WB || {});

  /** A new element with an optional class and text, appended to `parent` when given. */
  WB.el = function (tag, cls, parent, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  };
})();
