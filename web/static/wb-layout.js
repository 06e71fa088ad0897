/* wallboard: a board redrawn in place after the board editor saved it (window.WB.layout).
   The snapshot carries each board's layout revision (layouts.<board>); when it differs from
   the page's, the page fetches /board/<id>/layout and rebuilds its grid: same socket, no
   reload. The DOM built here is the one templates/board.html renders. */
(function () {
  "use strict";
  var WB = window.WB;
  var fetching = false;

  var el = WB.el;

  function clamp(value, low, high, fallback) {
    var n = Math.round(Number(value));
    return isFinite(n) && n >= low ? Math.min(n, high) : fallback;
  }

  function tileEl(def, columns, msg) {
    var type = String(def.type || "number");
    var section = el("section", "tile tile--none tile--type-" + type);
    section.setAttribute("data-tile", String(def.id));
    section.setAttribute("data-type", type);
    section.setAttribute("data-level", "none");
    section.setAttribute("data-format", String(def.format || "count"));
    section.setAttribute("data-cols", String(Math.min(clamp(def.cols, 1, 12, 1), columns)));
    section.setAttribute("data-rows", String(clamp(def.rows, 1, 6, 1)));
    var label = el("div", "tile__label", section, String(def.label || ""));
    label.title = String(def.label || "");
    var value = el("div", "tile__value tile__value--" + type + (type === "number" ? " tile__value--empty" : ""), section);
    if (type === "number") el("span", "tile__num", value, "\u2013");
    var foot = el("div", "tile__foot", section);
    if (type !== "clock" && type !== "announcements") {
      var win = String(def.window || "");
      var caption = el("span", "tile__window", foot, msg["window." + win] || win);
      caption.setAttribute("data-window", win);
    }
    if (def.trend_key) {
      var trend = el("span", "tile__trend", foot);
      trend.setAttribute("data-sense", "flat");
      trend.hidden = true;
    }
    if (def.note || type === "staffing") el("span", "tile__note", foot, String(def.note || ""));
    el("span", "tile__stale", foot).hidden = true;
    return section;
  }

  /** Replace the grid and the title with those of `config` (a /board/<id>/layout answer). */
  function render(config) {
    var grid = document.getElementById("wb-grid");
    var title = document.querySelector(".bar__title");
    if (!grid) return;
    var columns = clamp(config.columns, 1, 12, 4);
    grid.setAttribute("data-columns", String(columns));
    if (config.rows) grid.setAttribute("data-rows", String(clamp(config.rows, 1, 12, 1)));
    else grid.removeAttribute("data-rows");
    grid.textContent = "";
    var tiles = Array.isArray(config.tiles) ? config.tiles : [];
    var msg = config.messages || {};
    for (var i = 0; i < tiles.length; i++) grid.appendChild(tileEl(tiles[i], columns, msg));
    if (title) title.textContent = String(config.title || config.board || "");
  }

  function layoutUrl() {
    var token = new URLSearchParams(location.search).get("token");
    return "/board/" + encodeURIComponent(WB.config.board || "") + "/layout" +
      (token ? "?token=" + encodeURIComponent(token) : "");
  }

  /** Called with the state after each message; `relayout` sets the tiles up again. */
  function check(state, relayout) {
    var rev = state["layouts." + WB.config.board];
    if (typeof rev !== "number" || rev === WB.config.layout || fetching) return;
    fetching = true;
    fetch(layoutUrl(), { cache: "no-store", credentials: "same-origin" }).then(function (resp) {
      return resp.ok ? resp.json() : null;
    }).then(function (next) {
      fetching = false;
      if (!next || typeof next !== "object") return; // gone or refused: the socket says so
      if (next.locale !== WB.config.locale) {
        location.reload(); // another language: other messages and direction, a new page
        return;
      }
      for (var key in next) {
        if (key !== "__proto__" && key !== "embedded") WB.config[key] = next[key];
      }
      render(next);
      relayout();
    }, function () {
      fetching = false; // tried again at the next message
    });
  }

  WB.layout = { check: check, render: render };
})();
