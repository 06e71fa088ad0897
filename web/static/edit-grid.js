/* wallboard board editor: the grid (window.WB.editGrid). Tiles flow in order as on the TV;
   drag a tile to move it, drag its corner handle to resize its spans, drag a type from the
   palette to add a tile where it is dropped. Pointer events (mouse, touch, pen) and the
   keyboard do the same: arrows go from tile to tile, Ctrl+arrows move the selected tile,
   Shift+arrows resize it, Delete removes it, Enter on a palette button appends a tile. Text goes in with textContent only. */
(function () {
  "use strict";
  var WB = window.WB;
  var t = WB.i18n.t;
  var DRAG_PX = 4; // a press that moves less is a click

  var el = WB.el;

  function rtl() {
    return document.documentElement.dir === "rtl";
  }

  WB.editGrid = function (grid, palette, hooks) {
    var drag = null; // {kind: "move"|"new"|"resize", ...}
    var doc = null;
    var selected = -1;

    function tileEls() {
      return grid.querySelectorAll(".etile");
    }

    /** Where a tile dropped at (x, y) goes: before the tile under it (after, past its middle). */
    function dropIndex(x, y) {
      var els = tileEls();
      for (var i = 0; i < els.length; i++) {
        var r = els[i].getBoundingClientRect();
        if (x >= r.left && x <= r.right && y >= r.top && y <= r.bottom) {
          var after = rtl() ? x < r.left + r.width / 2 : x > r.left + r.width / 2;
          return after ? i + 1 : i;
        }
      }
      return els.length;
    }

    function overGrid(x, y) {
      var r = grid.getBoundingClientRect();
      return x >= r.left && x <= r.right && y >= r.top && y <= r.bottom;
    }

    function marker(index) {
      var els = tileEls();
      for (var i = 0; i < els.length; i++) {
        els[i].classList.toggle("etile--drop-before", i === index);
      }
      grid.classList.toggle("ed-grid--drop-end", index === els.length);
    }

    function render(nextDoc, nextSelected) {
      doc = nextDoc;
      selected = nextSelected;
      var board = doc ? doc.board : null;
      grid.textContent = "";
      grid.classList.toggle("ed-grid--locked", !!(doc && doc.read_only));
      if (!board) return;
      var columns = Math.max(1, Math.min(12, Number(board.columns) || 4));
      grid.style.setProperty("--columns", String(columns));
      var tiles = board.tiles || [];
      for (var i = 0; i < tiles.length; i++) {
        var tile = tiles[i];
        var info = hooks.describe(tile);
        var node = el("div", "etile" + (i === selected ? " etile--selected" : ""), grid);
        node.setAttribute("role", "listitem");
        node.setAttribute("tabindex", i === selected || (selected < 0 && i === 0) ? "0" : "-1");
        node.setAttribute("data-index", String(i));
        node.setAttribute("data-type", String(tile.type || "number"));
        node.setAttribute("aria-label", info.title + " · " + info.sub);
        node.style.gridColumn = "span " + Math.min(columns, Number(tile.cols) || 1);
        node.style.gridRow = "span " + (Number(tile.rows) || 1);
        el("div", "etile__title", node, info.title);
        el("div", "etile__sub", node, info.sub);
        if (info.level) el("div", "etile__th etile__th--" + info.level, node, info.thresholds);
        if (hooks.problems(i)) node.classList.add("etile--error");
        if (!doc.read_only) {
          var handle = el("div", "etile__resize", node);
          handle.setAttribute("aria-hidden", "true");
          handle.title = t("edit.f_cols") + " / " + t("edit.f_rows_span");
        }
      }
    }

    function focusSelected() {
      var node = grid.querySelector(".etile--selected");
      if (node) node.focus();
    }

    // ---------- pointer ----------

    function start(ev, state) {
      if (ev.button !== 0 || !doc || doc.read_only) return;
      drag = state;
      drag.x0 = ev.clientX;
      drag.y0 = ev.clientY;
      drag.moved = false;
      ev.preventDefault();
    }

    grid.addEventListener("pointerdown", function (ev) {
      var node = ev.target.closest ? ev.target.closest(".etile") : null;
      if (!node) return;
      var index = Number(node.getAttribute("data-index"));
      if (ev.target.classList.contains("etile__resize")) {
        var tile = doc.board.tiles[index];
        var columns = Math.max(1, Number(doc.board.columns) || 4);
        var cell = grid.clientWidth / columns;
        start(ev, { kind: "resize", index: index, cols: Number(tile.cols) || 1,
          rows: Number(tile.rows) || 1, cellW: cell, cellH: node.offsetHeight / (Number(tile.rows) || 1) });
        return;
      }
      hooks.select(index);
      start(ev, { kind: "move", index: index });
    });

    palette.addEventListener("pointerdown", function (ev) {
      var button = ev.target.closest ? ev.target.closest("[data-type]") : null;
      if (button) start(ev, { kind: "new", type: button.getAttribute("data-type") });
    });

    palette.addEventListener("click", function (ev) {
      // A click from the keyboard (Enter, Space) has no pointer: it appends the tile.
      var button = ev.target.closest ? ev.target.closest("[data-type]") : null;
      if (button && ev.detail === 0 && doc) hooks.insert(button.getAttribute("data-type"), doc.board.tiles.length);
    });

    document.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x0;
      var dy = ev.clientY - drag.y0;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < DRAG_PX) return;
      drag.moved = true;
      document.body.classList.add("ed-dragging");
      if (drag.kind === "resize") {
        var cols = Math.max(1, Math.min(12, drag.cols + Math.round((rtl() ? -dx : dx) / drag.cellW)));
        var rows = Math.max(1, Math.min(6, drag.rows + Math.round(dy / drag.cellH)));
        hooks.resize(drag.index, cols, rows);
        return;
      }
      marker(overGrid(ev.clientX, ev.clientY) ? dropIndex(ev.clientX, ev.clientY) : -1);
    });

    document.addEventListener("pointerup", function (ev) {
      if (!drag) return;
      var d = drag;
      drag = null;
      document.body.classList.remove("ed-dragging");
      marker(-1);
      if (d.kind === "resize") return;
      if (!d.moved) {
        if (d.kind === "new") hooks.insert(d.type, doc.board.tiles.length);
        return;
      }
      if (!overGrid(ev.clientX, ev.clientY)) return;
      var to = dropIndex(ev.clientX, ev.clientY);
      if (d.kind === "new") hooks.insert(d.type, to);
      else hooks.move(d.index, to > d.index ? to - 1 : to);
    });

    // ---------- keyboard ----------

    grid.addEventListener("keydown", function (ev) {
      var node = ev.target.closest ? ev.target.closest(".etile") : null;
      if (!node || !doc || doc.read_only) return;
      var index = Number(node.getAttribute("data-index"));
      var tile = doc.board.tiles[index];
      var columns = Math.max(1, Number(doc.board.columns) || 4);
      var back = rtl() ? "ArrowRight" : "ArrowLeft";
      var forth = rtl() ? "ArrowLeft" : "ArrowRight";
      var key = ev.key;
      if (key === "Delete" || key === "Backspace") {
        hooks.remove(index);
      } else if (ev.shiftKey && (key === back || key === forth)) {
        hooks.resize(index, Math.max(1, Math.min(12, (Number(tile.cols) || 1) + (key === forth ? 1 : -1))), Number(tile.rows) || 1);
      } else if (ev.shiftKey && (key === "ArrowUp" || key === "ArrowDown")) {
        hooks.resize(index, Number(tile.cols) || 1, Math.max(1, Math.min(6, (Number(tile.rows) || 1) + (key === "ArrowDown" ? 1 : -1))));
      } else if (key === back || key === forth || key === "ArrowUp" || key === "ArrowDown") {
        var step = key === back ? -1 : key === forth ? 1 : key === "ArrowUp" ? -columns : columns;
        var to = Math.max(0, Math.min(doc.board.tiles.length - 1, index + step));
        // Ctrl (or ⌘) + arrow moves the tile; an arrow alone moves to the next tile.
        if (ev.ctrlKey || ev.metaKey) hooks.move(index, to);
        else hooks.select(to);
      } else if (key === "Enter" || key === " ") {
        hooks.select(index);
      } else {
        return;
      }
      ev.preventDefault();
      focusSelected();
    });

    function setPalette(types, names) {
      palette.textContent = "";
      for (var i = 0; i < types.length; i++) {
        var button = el("button", "ed-palette__item", palette, names(types[i]));
        button.type = "button";
        button.setAttribute("data-type", types[i]);
      }
    }

    return { render: render, setPalette: setPalette, focusSelected: focusSelected };
  };
})();
