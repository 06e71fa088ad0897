/* wallboard: agent tiles (agent_grid, agent_table, team_table), added to window.WB.tiles.
   Rows come from the server (people.<board>.<tile>), already sorted and with names as the
   board allows; the page adds the time in state, from the server's state-change time and the
   server's clock (the page's clock corrected by WB.skewMs), ticking once a second. */
(function () {
  "use strict";
  var WB = window.WB;
  var I = WB.i18n;
  var t = I.t;
  var DASH = I.DASH;
  var types = WB.tiles.types;
  var setText = WB.tiles.setText;
  var RANK = { none: 0, ok: 1, warn: 2, crit: 3 };
  var CELL_ASPECT = 2.6; // a cell's width to height: a name, a time and a line of state
  var grids = []; // the grid tiles, re-timed every second between messages

  var el = WB.el;

  function num(v) {
    return typeof v === "number" && isFinite(v) ? v : null;
  }

  function serverNow() {
    return (Date.now() + (WB.skewMs || 0)) / 1000;
  }

  function stateText(state) {
    switch (state) {
      case "available": return t("agents.available");
      case "busy": return t("agents.busy");
      case "wrapup": return t("agents.wrapup");
      case "away": return t("agents.away");
      default: return t("agents.offline");
    }
  }

  /** Amber or red once an agent has been in its state longer than the tile's levels. */
  function stateLevel(levels, elapsed) {
    if (!levels || elapsed === null) return "none";
    var crit = num(levels.crit);
    var warn = num(levels.warn);
    if (crit !== null && elapsed >= crit) return "crit";
    if (warn !== null && elapsed >= warn) return "warn";
    return "none";
  }

  /** Columns and rows for n cells in a w×h box, cells as near CELL_ASPECT as they fit. */
  function layout(n, w, h) {
    var best = { cols: 1, rows: Math.max(1, n), size: 0 };
    for (var cols = 1; cols <= Math.max(1, n); cols++) {
      var rows = Math.ceil(n / cols);
      var cw = w / cols;
      var ch = h / rows;
      var size = Math.min(cw / CELL_ASPECT, ch); // the height a cell of that aspect gets
      if (size > best.size) best = { cols: cols, rows: rows, size: size };
    }
    return best;
  }

  function retime(tile) {
    var now = serverNow();
    var worst = "none";
    for (var i = 0; i < tile.cells.length; i++) {
      var cell = tile.cells[i];
      if (cell.hidden) continue;
      var elapsed = cell.since === null ? null : Math.max(0, now - cell.since);
      setText(cell.time, elapsed === null ? DASH : I.formatDuration(elapsed));
      var level = cell.state === "offline" ? "none" : stateLevel(tile.def.states[cell.state], elapsed);
      if (cell.level !== level) {
        cell.level = level;
        cell.box.setAttribute("data-level", level);
      }
      if (RANK[level] > RANK[worst]) worst = level;
    }
    return worst;
  }

  types.agent_grid = {
    build: function (tile) {
      tile.gridEl = el("div", "agrid", tile.bodyEl);
      tile.emptyEl = el("div", "agrid__empty", tile.bodyEl);
      tile.cells = [];
      tile.rowsRef = undefined;
      tile.shape = "";
      grids.push(tile);
    },
    paint: function (tile, S) {
      var rows = S[tile.def.people_key];
      if (rows !== tile.rowsRef) {
        tile.rowsRef = rows;
        fill(tile, Array.isArray(rows) ? rows : []);
      }
      shape(tile);
      return retime(tile);
    },
  };

  function fill(tile, rows) {
    tile.count = rows.length;
    while (tile.cells.length < rows.length) {
      var box = el("div", "agent", tile.gridEl);
      var top = el("div", "agent__top", box);
      var name = el("span", "agent__name", top);
      name.dir = "auto"; // a Latin name on a Hebrew board is cut at its own end
      tile.cells.push({
        box: box, name: name, time: el("span", "agent__time", top),
        info: el("span", "agent__info", box), state: "", since: null, level: "", hidden: false,
      });
    }
    for (var i = 0; i < tile.cells.length; i++) {
      var cell = tile.cells[i];
      var row = rows[i];
      cell.hidden = !row;
      cell.box.hidden = !row;
      if (!row) continue;
      var state = typeof row.state === "string" ? row.state : "offline";
      cell.state = state;
      cell.since = num(row.since);
      if (cell.box.getAttribute("data-state") !== state) cell.box.setAttribute("data-state", state);
      setText(cell.name, typeof row.name === "string" && row.name ? row.name : DASH);
      var parts = [stateText(state)];
      if (typeof row.reason === "string" && row.reason) parts.push(row.reason);
      if (typeof row.channel === "string" && row.channel) parts.push(row.channel);
      setText(cell.info, parts.join(" · "));
    }
    tile.emptyEl.hidden = rows.length > 0;
    setText(tile.emptyEl, rows.length ? "" : t("ui.no_agents"));
  }

  /** Cells shrink to fit every agent in the box: columns, rows and font from its size. */
  function shape(tile) {
    var w = tile.bodyEl.clientWidth;
    var h = tile.bodyEl.clientHeight;
    var key = tile.count + "|" + w + "|" + h;
    if (key === tile.shape || !w || !h) return;
    tile.shape = key;
    var gap = Math.max(2, Math.round(Math.min(w, h) * 0.006));
    var grid = layout(Math.max(1, tile.count), w, h);
    var cellH = (h - gap * (grid.rows - 1)) / grid.rows;
    var cellW = (w - gap * (grid.cols - 1)) / grid.cols;
    var s = tile.gridEl.style;
    s.setProperty("--cols", String(grid.cols));
    s.setProperty("--rows", String(grid.rows));
    s.setProperty("--gap", gap + "px");
    // Two lines of text and some room: the smaller of the cell's height and width decide.
    s.setProperty("--cell-font", Math.max(6, Math.min(cellH * 0.34, cellW / 9)).toFixed(1) + "px");
  }

  setInterval(function () {
    for (var i = 0; i < grids.length; i++) if (grids[i].cells.length) retime(grids[i]);
  }, 1000);

  /* ---------- tables: per agent or per team, the tile's columns over its window ---------- */

  var FORMATS = {
    answered: "count", handled: "count", transfers: "count", aht_s: "duration",
    occupancy: "ratio", csat: "ratio", available_s: "duration", busy_s: "duration",
    wrapup_s: "duration", away_s: "duration", agents_staffed: "count",
    agents_available: "count", agents_away: "count",
  };

  function heading(column) {
    switch (column) {
      case "name": return t("col.name");
      case "team": return t("col.team");
      case "state": return t("col.state");
      case "handled": return t("col.handled");
      case "available_s": return t("col.available_s");
      case "busy_s": return t("col.busy_s");
      case "wrapup_s": return t("col.wrapup_s");
      case "away_s": return t("col.away_s");
      default: return t("kpi." + column);
    }
  }

  function levelOf(thresholds, value) {
    if (!thresholds || num(value) === null) return "none";
    var warn = num(thresholds.warn);
    var crit = num(thresholds.crit);
    if (thresholds.direction === "low_bad") {
      return crit !== null && value <= crit ? "crit" : warn !== null && value <= warn ? "warn" : "ok";
    }
    return crit !== null && value >= crit ? "crit" : warn !== null && value >= warn ? "warn" : "ok";
  }

  function cellText(column, row) {
    var value = row[column];
    if (column === "state") return stateText(value);
    if (column === "name" || column === "team") return typeof value === "string" && value ? value : DASH;
    var text = I.formatValue(FORMATS[column] || "count", value);
    if (column === "csat" && num(row.csat_n) !== null && text !== DASH) text += " (n=" + I.count(row.csat_n) + ")";
    return text;
  }

  var table = {
    build: function (tile) {
      var tableEl = tile.tableEl = el("table", "qtable atable", tile.bodyEl);
      var head = el("tr", "", el("thead", "", tableEl));
      var columns = tile.def.columns || [];
      for (var i = 0; i < columns.length; i++) el("th", "", head).textContent = heading(columns[i]);
      tile.tbody = el("tbody", "", tableEl);
      tile.trs = [];
      tile.rowsRef = undefined;
    },
    paint: function (tile, S) {
      var rows = S[tile.def.people_key];
      if (rows === tile.rowsRef) return tile.level === "none" ? "none" : tile.level;
      tile.rowsRef = rows;
      rows = Array.isArray(rows) ? rows : [];
      var columns = tile.def.columns || [];
      var limits = tile.def.column_thresholds || {};
      var worst = "none";
      while (tile.trs.length < rows.length) {
        var tr = el("tr", "", tile.tbody);
        for (var c = 0; c < columns.length; c++) el("td", "", tr);
        tile.trs.push(tr);
      }
      for (var i = 0; i < tile.trs.length; i++) {
        var tr2 = tile.trs[i];
        tr2.hidden = i >= rows.length;
        if (tr2.hidden) continue;
        for (var j = 0; j < columns.length; j++) {
          var td = tr2.children[j];
          setText(td, cellText(columns[j], rows[i]));
          var level = levelOf(limits[columns[j]], rows[i][columns[j]]);
          if (td.getAttribute("data-level") !== level) td.setAttribute("data-level", level);
          if (RANK[level] > RANK[worst]) worst = level;
        }
      }
      tile.tableEl.style.setProperty("--rows", String(Math.max(4, rows.length + 1)));
      tile.dirty = true;
      return worst;
    },
  };

  types.agent_table = table;
  types.team_table = table;
  WB.agents = { layout: layout, stateLevel: stateLevel };
})();
