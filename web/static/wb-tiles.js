/* wallboard: tile types (window.WB.tiles). Each type builds its DOM once and repaints only
   what changed. Server strings (queue labels, announcements) go in with textContent only. */
(function () {
  "use strict";
  var WB = window.WB;
  var I = WB.i18n;
  var t = I.t;
  var DASH = I.DASH;
  var SVG = "http://www.w3.org/2000/svg";

  var el = WB.el;

  function svg(tag, attrs, parent) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(node);
    return node;
  }

  function setText(node, text) {
    if (node && node.textContent !== text) node.textContent = text;
  }

  function num(v) {
    return typeof v === "number" && isFinite(v) ? v : null;
  }

  /** Green/amber/red of a value against direction-aware thresholds. */
  function levelOf(thresholds, value) {
    if (!thresholds || num(value) === null) return "none";
    var warn = num(thresholds.warn);
    var crit = num(thresholds.crit);
    if (warn === null && crit === null) return "none";
    if (thresholds.direction === "low_bad") {
      if (crit !== null && value <= crit) return "crit";
      if (warn !== null && value <= warn) return "warn";
      return "ok";
    }
    if (crit !== null && value >= crit) return "crit";
    if (warn !== null && value >= warn) return "warn";
    return "ok";
  }

  /** The big value of a tile: its text and a width estimate so CSS can size it to fit. */
  function setNum(tile, node, text) {
    if (node.textContent === text) return;
    node.textContent = text;
    var chars = String(I.textEms(text));
    // Tabular digits: "3" → "4" keeps the width, so only a new width estimate needs a re-fit
    // (a fit forces a layout; skipping it keeps updates cheap on a 4K TV).
    if (node.style.getPropertyValue("--chars") === chars) return;
    node.style.setProperty("--chars", chars);
    tile.dirty = true;
  }

  function numberParts(tile) {
    tile.numEl = tile.bodyEl.querySelector(".tile__num") || el("span", "tile__num", tile.bodyEl);
  }

  function stat(parent, cls) {
    var box = el("div", "stat " + (cls || ""), parent);
    return { box: box, num: el("span", "stat__num", box), cap: el("span", "stat__cap", box) };
  }

  var types = {};

  /** The level of a tile's value; a wait without thresholds of its own is judged by the
      server's worst wait/threshold ratio of the queues in scope (level_key). */
  function levelOfTile(tile, S, value) {
    return levelOf(tile.def.thresholds, tile.def.level_key ? S[tile.def.level_key] : value);
  }

  types.number = {
    build: numberParts,
    paint: function (tile, S) {
      var value = S[tile.def.key];
      setNum(tile, tile.numEl, I.formatValue(tile.def.format, value));
      tile.bodyEl.classList.toggle("tile__value--empty", num(value) === null && typeof value !== "string");
      if (tile.def.trend_key) paintTrend(tile, value, S[tile.def.trend_key]);
      return levelOfTile(tile, S, value);
    },
  };

  /** ▲/▼ against the previous window, coloured by whether the move is good or bad. */
  function paintTrend(tile, value, previous) {
    if (!tile.trendEl) tile.trendEl = tile.el.querySelector(".tile__trend");
    if (!tile.trendEl) return;
    var text = "";
    var sense = "flat";
    if (num(value) !== null && num(previous) !== null) {
      var diff = value - previous;
      var scale = Math.max(Math.abs(previous), 1e-9);
      var prev = I.formatValue(tile.def.format, previous);
      if (Math.abs(diff) / scale < 0.005) {
        text = "\u25B6 " + t("trend.flat");
      } else {
        var up = diff > 0;
        var th = tile.def.thresholds;
        var highBad = !th || th.direction !== "low_bad";
        sense = th ? (up === highBad ? "bad" : "good") : "flat";
        text = (up ? "\u25B2 " : "\u25BC ") + t(up ? "trend.up" : "trend.down", { v: prev });
      }
    }
    setText(tile.trendEl, text);
    if (tile.trendEl.getAttribute("data-sense") !== sense) tile.trendEl.setAttribute("data-sense", sense);
    tile.trendEl.hidden = !text;
  }

  types.ring = {
    build: function (tile) {
      var box = tile.bodyEl;
      var ring = svg("svg", { viewBox: "0 0 100 100", class: "ring", "aria-hidden": "true" }, box);
      svg("circle", { cx: 50, cy: 50, r: 42, class: "ring__track" }, ring);
      tile.arcEl = svg("circle", { cx: 50, cy: 50, r: 42, class: "ring__arc", pathLength: 100,
        "stroke-dasharray": "0 100", transform: "rotate(-90 50 50)" }, ring);
      tile.markEl = svg("line", { x1: 50, y1: 2, x2: 50, y2: 17, class: "ring__target" }, ring);
      numberParts(tile);
      tile.subEl = el("span", "tile__sub", box);
    },
    paint: function (tile, S) {
      var value = S[tile.def.key];
      var v = num(value);
      setNum(tile, tile.numEl, I.formatValue(tile.def.format, value));
      var share = v === null ? 0 : Math.max(0, Math.min(1, v)) * 100;
      var dash = share.toFixed(1) + " 100";
      if (tile.arcEl.getAttribute("stroke-dasharray") !== dash) tile.arcEl.setAttribute("stroke-dasharray", dash);
      var target = num(S[tile.def.prefix + ".sl_target"]);
      if (target === null) target = num(tile.def.target);
      var angle = target === null ? "" : "rotate(" + (target * 360).toFixed(1) + " 50 50)";
      if (tile.markEl.getAttribute("transform") !== angle) tile.markEl.setAttribute("transform", angle);
      tile.markEl.style.display = target === null ? "none" : "";
      setText(tile.subEl, target === null ? "" : t("ring.target", { p: I.percent0(target) }));
      return levelOf(tile.def.thresholds, value);
    },
  };

  types.sparkline = {
    build: function (tile) {
      numberParts(tile);
      var chart = svg("svg", { viewBox: "0 0 59 100", preserveAspectRatio: "none", class: "spark", "aria-hidden": "true" }, tile.bodyEl);
      tile.areaEl = svg("polygon", { class: "spark__area", points: "" }, chart);
      tile.lineEl = svg("polyline", { class: "spark__line", points: "", "vector-effect": "non-scaling-stroke" }, chart);
      tile.seriesRef = null;
    },
    paint: function (tile, S) {
      var value = S[tile.def.key];
      setNum(tile, tile.numEl, I.formatValue(tile.def.format, value));
      var series = S[tile.def.series_key];
      if (series !== tile.seriesRef) {
        tile.seriesRef = series; // a new array arrives only when the series changed
        var pts = "";
        var lo = Infinity;
        var hi = -Infinity;
        var i;
        var n = Array.isArray(series) ? series.length : 0;
        for (i = 0; i < n; i++) {
          if (num(series[i]) !== null) {
            lo = Math.min(lo, series[i]);
            hi = Math.max(hi, series[i]);
          }
        }
        if (lo > 0) lo = 0; // counts and ratios read against zero
        var span = hi > lo ? hi - lo : 1;
        var first = -1;
        var last = -1;
        for (i = 0; i < n; i++) {
          if (num(series[i]) === null) continue;
          var x = 59 - (n - 1 - i);
          if (first < 0) first = x;
          last = x;
          pts += x + "," + (96 - ((series[i] - lo) / span) * 92).toFixed(2) + " ";
        }
        tile.lineEl.setAttribute("points", pts);
        tile.areaEl.setAttribute("points", pts ? first + ",100 " + pts + last + ",100" : "");
      }
      return levelOfTile(tile, S, value);
    },
  };

  types.survey = {
    build: function (tile) {
      numberParts(tile);
      tile.subEl = el("span", "tile__sub", tile.bodyEl);
    },
    paint: function (tile, S) {
      var value = S[tile.def.key];
      var n = num(S[tile.def.n_key]) || 0;
      setNum(tile, tile.numEl, I.formatValue(tile.def.format, value));
      var few = num(value) === null;
      setText(tile.subEl, few
        ? t("survey.too_few", { n: I.count(n), min: I.count(tile.def.min_sample || 0) })
        : t("survey.n", { n: I.count(n) }));
      // Below the minimum sample the words are the message, not a dash: let them wrap, large.
      tile.bodyEl.classList.toggle("tile__value--few", few);
      return levelOf(tile.def.thresholds, value);
    },
  };

  types.legal = {
    build: function (tile) {
      numberParts(tile);
      tile.subEl = el("span", "tile__sub", tile.bodyEl);
    },
    paint: function (tile, S) {
      var base = tile.def.legal_key;
      var oldest = num(S[base + ".oldest_s"]);
      var limit = num(S[base + ".limit_s"]);
      var waiting = num(S[tile.def.prefix + ".live.waiting"]) || 0;
      var state = S[base + ".state"];
      if (oldest === null || limit === null) {
        setNum(tile, tile.numEl, DASH);
        setText(tile.subEl, "");
        return "none";
      }
      var left = limit - oldest;
      setNum(tile, tile.numEl, (left < 0 ? "+" : "") + I.formatDuration(Math.abs(left)));
      setText(tile.subEl, !waiting ? t("legal.idle") + " · " + t("legal.limit", { t: I.formatDuration(limit) })
        : left >= 0 ? t("legal.left", { t: I.formatDuration(left) }) : t("legal.over", { t: I.formatDuration(-left) }));
      return state === "breach" ? "crit" : state === "warn" ? "warn" : "ok";
    },
  };

  /** A row of numbers, each with a caption that never changes (set here, once). */
  function statsBuild(names, captions) {
    return function (tile) {
      tile.stats = {};
      var row = el("div", "stats", tile.bodyEl);
      row.style.setProperty("--n", String(names.length));
      tile.statsEl = row;
      for (var i = 0; i < names.length; i++) {
        var s = tile.stats[names[i]] = stat(row, "stat--" + names[i]);
        s.cap.textContent = captions[i]();
      }
    };
  }

  function paintStats(tile, values) {
    var widest = 1.4;
    for (var name in values) {
      var s = tile.stats[name];
      var text = num(values[name]) === null ? DASH : I.count(values[name]);
      setText(s.num, text);
      widest = Math.max(widest, I.textEms(text));
    }
    var chars = String(widest);
    if (tile.statsEl.style.getPropertyValue("--chars") !== chars) {
      tile.statsEl.style.setProperty("--chars", chars);
      tile.dirty = true;
    }
  }

  types.staffing = {
    build: function (tile) {
      statsBuild(["need", "staffed"], [
        function () { return t("staffing.need", { n: "" }).replace(/[\s\u2068\u2069]+$/, ""); },
        function () { return t("staffing.staffed", { n: "" }).replace(/[\s\u2068\u2069]+$/, ""); }])(tile);
      tile.noteEl = tile.el.querySelector(".tile__note");
    },
    paint: function (tile, S) {
      var p = tile.def.prefix + ".live.";
      var need = num(S[p + "agents_needed"]);
      // Staffed as the forecast counts them: agents available, busy or in wrap-up.
      var staffed = (num(S[p + "agents_available"]) || 0) + (num(S[p + "agents_busy"]) || 0) + (num(S[p + "agents_wrapup"]) || 0);
      paintStats(tile, { need: need, staffed: staffed });
      setText(tile.noteEl, need === null ? "" : t("staffing.need", { n: I.count(need) }) + " · " + t("staffing.staffed", { n: I.count(staffed) }));
      if (tile.def.thresholds) return levelOf(tile.def.thresholds, need === null ? null : staffed - need);
      return need === null ? "none" : staffed >= need ? "ok" : staffed >= need - 1 ? "warn" : "crit";
    },
  };

  /** Today's offered so far against the forecast so far (server/forecasting.py), the rest of
      the day and the agents the next interval needs; coloured by the difference. */
  types.forecast = {
    build: function (tile) {
      statsBuild(["actual", "expected"], [
        function () { return t("forecast.actual"); }, function () { return t("forecast.expected"); }])(tile);
      tile.subEl = el("span", "tile__sub", tile.bodyEl);
      tile.planEl = el("span", "tile__sub tile__plan", tile.bodyEl);
    },
    paint: function (tile, S) {
      var p = tile.def.forecast_key + ".";
      var expected = num(S[p + "forecast_so_far"]);
      var diff = num(S[p + "difference"]);
      paintStats(tile, { actual: num(S[p + "offered_so_far"]), expected: expected });
      setText(tile.subEl, expected === null ? t("forecast.no_history") : diff === null ? ""
        : t("forecast.diff", { p: (diff > 0 ? "+" : "") + I.formatValue("ratio", diff) }));
      var parts = [];
      var rest = num(S[p + "forecast_rest"]);
      if (rest !== null) parts.push(t("forecast.rest", { n: I.count(rest) }));
      var need = num(S[p + "next.agents_needed"]);
      var start = num(S[p + "next.start"]);
      if (need !== null && start !== null) {
        var zone = WB.config.timezone || S["meta.timezone"] || "";
        parts.push(t("forecast.need", { n: I.count(need), t: I.dateFormat(zone, "hm").format(new Date(start * 1000)) }));
      }
      setText(tile.planEl, parts.join(" · "));
      return levelOf(tile.def.thresholds, diff);
    },
  };

  types.tickets = {
    build: statsBuild(["breached", "at_risk"], [
      function () { return t("tickets.breached"); }, function () { return t("tickets.at_risk"); }]),
    paint: function (tile, S) {
      var p = tile.def.prefix + ".live.";
      var breached = num(S[p + "tickets_overdue"]);
      var risk = num(S[p + "tickets_at_risk"]);
      paintStats(tile, { breached: breached, at_risk: risk });
      if (breached === null) return "none";
      if (tile.def.thresholds) return levelOf(tile.def.thresholds, breached);
      return breached > 0 ? "crit" : risk > 0 ? "warn" : "ok";
    },
  };

  var AGENT_STATES = ["available", "busy", "wrapup", "away"];
  types.agents = {
    build: function (tile) {
      var bar = el("div", "agentbar", tile.bodyEl);
      tile.segs = {};
      for (var i = 0; i < AGENT_STATES.length; i++) tile.segs[AGENT_STATES[i]] = el("span", "agentbar__seg agentbar__seg--" + AGENT_STATES[i], bar);
      statsBuild(AGENT_STATES, AGENT_STATES.map(function (name) {
        return function () { return t("agents." + name); };
      }))(tile);
    },
    paint: function (tile, S) {
      var p = tile.def.prefix + ".live.agents_";
      var values = {};
      for (var i = 0; i < AGENT_STATES.length; i++) {
        var name = AGENT_STATES[i];
        values[name] = num(S[p + name]);
        var grow = String(values[name] || 0);
        if (tile.segs[name].style.flexGrow !== grow) tile.segs[name].style.flexGrow = grow;
      }
      paintStats(tile, values);
      return levelOf(tile.def.thresholds, values.available);
    },
  };

  // The server's defaults for wait tiles (wallboard/kpi/waitratio.py): amber past the queue's
  // threshold, red at twice it. A service level 10 points under target is red.
  var WAIT_LEVELS = { direction: "high_bad", warn: 1, crit: 2 };
  var SL_CRIT_BELOW = 0.1;
  var RANK = { none: 0, ok: 1, warn: 2, crit: 3 };

  function worse(a, b) {
    return RANK[b] > RANK[a] ? b : a;
  }

  function setCellLevel(cell, level) {
    if (cell.getAttribute("data-level") !== level) cell.setAttribute("data-level", level);
  }

  types.queue_table = {
    build: function (tile) {
      var table = el("table", "qtable", tile.bodyEl);
      var head = el("tr", "", el("thead", "", table));
      var cols = ["table.queue", "table.waiting", "table.oldest"];
      if (tile.def.rows_keys.length && tile.def.rows_keys[0].sl) cols.push("table.sl");
      for (var i = 0; i < cols.length; i++) el("th", "", head).textContent = t(cols[i]);
      tile.tbody = el("tbody", "", table);
      tile.bodyEl.style.setProperty("--rows", String(tile.def.rows_keys.length + 1));
      tile.rowsList = tile.def.rows_keys.map(function (keys) {
        var tr = el("tr", "");
        var row = { keys: keys, tr: tr, cells: [], level: "", urgency: 0 };
        for (var j = 0; j < cols.length; j++) row.cells.push(el("td", "", tr));
        tile.tbody.appendChild(tr);
        return row;
      });
      tile.order = "";
    },
    paint: function (tile, S) {
      var rows = tile.rowsList;
      var worst = "none";
      for (var i = 0; i < rows.length; i++) {
        var r = rows[i];
        var label = S[r.keys.label];
        var oldest = num(S[r.keys.oldest]) || 0;
        var waiting = num(S[r.keys.waiting]) || 0;
        var limit = num(S["queues." + r.keys.queue + ".sl_threshold_s"]) || 20;
        setText(r.cells[0], typeof label === "string" ? label : r.keys.queue);
        setText(r.cells[1], I.count(waiting));
        setText(r.cells[2], I.formatDuration(oldest));
        // Every column with a target is coloured: the longest wait against the queue's
        // threshold (as wait tiles judge it), the service level against the queue's target.
        var ratio = num(S[r.keys.oldest_ratio]);
        if (ratio === null) ratio = oldest / limit;
        var level = levelOf(WAIT_LEVELS, ratio);
        setCellLevel(r.cells[2], level);
        if (r.cells[3]) {
          var sl = S[r.keys.sl];
          setText(r.cells[3], I.formatValue("ratio", sl));
          var target = num(S["queues." + r.keys.queue + ".sl_target"]);
          var slLevel = num(sl) === null || target === null ? "none"
            : sl < target - SL_CRIT_BELOW ? "crit" : sl < target ? "warn" : "ok";
          setCellLevel(r.cells[3], slLevel);
          level = worse(level, slLevel);
        }
        if (r.level !== level) {
          r.level = level;
          r.tr.setAttribute("data-level", level);
        }
        if (level === "crit" || (level === "warn" && worst !== "crit")) worst = level;
        else if (worst === "none") worst = "ok";
        // Urgency: the longest wait first, then the most waiting.
        r.urgency = oldest * 1000 + waiting;
      }
      var sorted = rows.slice().sort(function (a, b) { return b.urgency - a.urgency; });
      var order = sorted.map(function (r) { return r.keys.queue; }).join("\u0000");
      if (order !== tile.order) {
        tile.order = order;
        for (var k = 0; k < sorted.length; k++) tile.tbody.appendChild(sorted[k].tr);
      }
      return tile.def.thresholds ? worst : "none";
    },
  };

  types.announcements = {
    build: function (tile) {
      tile.textEl = el("div", "ticker", tile.bodyEl);
      tile.listRef = null;
      tile.texts = [];
      tile.shown = 0;
      tile.rotateAt = 0;
    },
    paint: function (tile, S, now) {
      // The server sends each board its own list (this board's and the all-boards ones).
      var list = S["announcements." + WB.config.board];
      if (list !== tile.listRef) { // read when the list changes, not on every message
        tile.listRef = list;
        tile.texts = [];
        if (Array.isArray(list)) {
          for (var i = 0; i < list.length; i++) {
            var a = list[i];
            if (a && typeof a.text === "string") tile.texts.push(a.text);
          }
        }
      }
      var texts = tile.texts;
      if (now >= tile.rotateAt) {
        tile.shown++;
        tile.rotateAt = now + 8000; // one message at a time, each for 8 s
      }
      var text = texts.length ? texts[tile.shown % texts.length] : t("ui.no_announcements");
      if (tile.textEl.textContent !== text) {
        tile.textEl.textContent = text;
        tile.textEl.style.setProperty("--len", String(Math.max(8, text.length)));
        tile.dirty = true;
      }
      tile.bodyEl.classList.toggle("tile__value--empty", !texts.length);
      return texts.length ? "warn" : "none";
    },
  };

  types.clock = {
    build: function (tile) {
      numberParts(tile);
      tile.subEl = el("span", "tile__sub", tile.bodyEl);
    },
    paint: function (tile, S, now) {
      var zone = WB.config.timezone || S["meta.timezone"] || "";
      var at = new Date(now + (WB.skewMs || 0));
      setNum(tile, tile.numEl, I.dateFormat(zone, "hm").format(at));
      setText(tile.subEl, I.dateFormat(zone, "date").format(at));
      return "none";
    },
  };

  WB.tiles = { types: types, setText: setText };
})();
