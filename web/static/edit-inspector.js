/* wallboard board editor: the inspector (window.WB.editInspector). Every choice it offers comes
   from /api/editor/schema (the server's models and what exists on this site), so it never
   offers what the server would refuse; the server's messages appear beside their field. */
(function () {
  "use strict";
  var WB = window.WB;
  var I = WB.i18n;
  var t = I.t;

  var el = WB.el;

  /** A message, or `fallback` when the catalogue has none for `key`. */
  function label(key, fallback) {
    var text = t(key);
    return text === key ? fallback : text;
  }

  function defs(schema, model) {
    var all = (schema.json_schema && schema.json_schema.$defs) || {};
    return (all[model] && all[model].properties) || {};
  }

  /** The enum of a model's field in the JSON Schema (Literal fields). */
  function enumOf(schema, model, field) {
    var prop = defs(schema, model)[field] || {};
    if (prop.enum) return prop.enum;
    var any = prop.anyOf || [];
    for (var i = 0; i < any.length; i++) if (any[i].enum) return any[i].enum;
    return [];
  }

  function bounds(schema, model, field) {
    var prop = defs(schema, model)[field] || {};
    return { min: prop.minimum, max: prop.maximum };
  }

  WB.levelOf = function (th, value) {
    if (!th || typeof value !== "number" || !isFinite(value)) return "none";
    var warn = typeof th.warn === "number" ? th.warn : null;
    var crit = typeof th.crit === "number" ? th.crit : null;
    if (warn === null && crit === null) return "none";
    if (th.direction === "low_bad") {
      if (crit !== null && value <= crit) return "crit";
      return warn !== null && value <= warn ? "warn" : "ok";
    }
    if (crit !== null && value >= crit) return "crit";
    return warn !== null && value >= warn ? "warn" : "ok";
  };

  /** A tile made whole for its type: a KPI and window that fit, no other type's settings. */
  WB.tileDefaults = function (tile, s) {
    var kpis = s.kpis[tile.type] || [];
    if (!kpis.length) delete tile.kpi;
    else if (kpis.indexOf(tile.kpi) < 0) tile.kpi = s.type_kpi[tile.type] || kpis[0];
    var live = tile.kpi && s.live_kpis.indexOf(tile.kpi) >= 0 && tile.type !== "queue_table";
    if (tile.type === "forecast") tile.window = "today";
    else if (live || !tile.kpi) delete tile.window;
    else if (s.windows.indexOf(tile.window) < 0) tile.window = s.windows.indexOf("today") >= 0 ? "today" : s.windows[0];
    if (tile.type === "forecast" || tile.type === "legal" || tile.type === "staffing") delete tile.channel;
    var ruled = Object.keys(s.queues).filter(function (q) { return s.queues[q].legal_rules.length; });
    if (tile.type === "legal" && ruled.indexOf(tile.queue) < 0) tile.queue = ruled[0];
    if (tile.type === "staffing" && !tile.queue) tile.queue = Object.keys(s.queues)[0];
    if (tile.type !== "legal") delete tile.rule;
    // Agent tiles' own settings go with their type (the server refuses them elsewhere).
    if (tile.type !== "agent_grid" && tile.type !== "agent_table") delete tile.team;
    if (tile.type !== "agent_grid") delete tile.states;
    if (tile.type !== "agent_table" && tile.type !== "team_table") {
      delete tile.columns;
      delete tile.sort;
      delete tile.column_thresholds;
    }
    if (tile.type === "team_table") {
      delete tile.queue;
      delete tile.queues;
      delete tile.channel;
    }
    if (tile.type === "agent_grid" || tile.type === "agent_table") delete tile.channel;
    if (!tile.kpi) delete tile.thresholds;
    return tile;
  };

  WB.editInspector = function (boardBox, tileBox, hooks) {
    var schema = null;

    /** One labelled field with its control and the server's messages for `path`. */
    function field(parent, key, path, control) {
      var box = el("div", "ed-field", parent);
      var id = "ed-f-" + path.replace(/[^\w]/g, "_");
      var lab = el("label", "ed-field__label", box, t(key));
      lab.htmlFor = id;
      control.id = id;
      control.setAttribute("data-path", path);
      box.appendChild(control);
      var problems = hooks.problems(path, true);
      if (problems.length) {
        box.classList.add("ed-field--error");
        var err = el("div", "ed-field__error", box, problems.join("; "));
        err.id = id + "-err";
        control.setAttribute("aria-invalid", "true");
        control.setAttribute("aria-describedby", err.id);
      }
      return control;
    }

    function select(options, value, onChange) {
      var node = el("select");
      for (var i = 0; i < options.length; i++) {
        var opt = el("option", null, node, options[i][1]);
        opt.value = options[i][0];
      }
      node.value = value === undefined || value === null ? "" : String(value);
      node.addEventListener("change", function () { onChange(node.value); });
      return node;
    }

    function input(type, value, attrs, onChange, live) {
      var node = el("input");
      node.type = type;
      for (var k in attrs) if (attrs[k] !== undefined) node.setAttribute(k, attrs[k]);
      if (type === "checkbox") node.checked = !!value;
      else node.value = value === undefined || value === null ? "" : String(value);
      node.addEventListener(live ? "input" : "change", function () {
        onChange(type === "checkbox" ? node.checked : node.value);
      });
      return node;
    }

    function num(text) {
      return text === "" || text === null ? null : Number(text);
    }

    function renderBoard(doc) {
      boardBox.textContent = "";
      if (!doc || !schema) return;
      var b = doc.board;
      var set = hooks.setBoard;
      var fs = el("fieldset", "ed-fields", boardBox);
      fs.disabled = !!doc.read_only;
      field(fs, "edit.f_title", "title", input("text", b.title, { maxlength: 200 }, function (v) { set("title", v || null); }));
      var cb = bounds(schema, "BoardConfig", "columns");
      field(fs, "edit.f_columns", "columns", input("number", b.columns || 4, { min: cb.min, max: cb.max }, function (v) { set("columns", num(v)); }));
      field(fs, "edit.f_rows", "rows", input("number", b.rows, { min: 1, max: 12 }, function (v) { set("rows", num(v)); }));
      var locales = [["", t("edit.default") + " (" + schema.site_locale + ")"]].concat(schema.locales.map(function (l) { return [l, l]; }));
      field(fs, "edit.f_locale", "locale", select(locales, b.locale, function (v) { set("locale", v || null); }));
      field(fs, "edit.f_stale", "stale_after_s", input("number", b.stale_after_s, { min: 1, step: 1 }, function (v) { set("stale_after_s", num(v)); }));
      var alert = b.alert || {};
      var sounds = enumOf(schema, "AlertConfig", "sound").map(function (s) { return [s, label("edit.sound_" + s, s)]; });
      field(fs, "edit.f_sound", "alert.sound", select(sounds, alert.sound || "chime", function (v) { set("alert.sound", v); }));
      field(fs, "edit.f_quiet", "alert.quiet_hours", input("text", alert.quiet_hours, { maxlength: 11, placeholder: "22:00-07:00" }, function (v) { set("alert.quiet_hours", v || null); }));
      field(fs, "edit.f_mute", "alert.mute", input("checkbox", alert.mute, {}, function (v) { set("alert.mute", v); }));
      var names = enumOf(schema, "BoardConfig", "agents").map(function (a) { return [a, label("edit.agents_" + a, a)]; });
      if (names.length) field(fs, "edit.f_agents", "agents", select(names, b.agents || "hidden", function (v) { set("agents", v); }));
    }

    function windowsFor(tile) {
      var kpi = tile.kpi;
      if (tile.type === "forecast") return ["today"];
      if (kpi && schema.live_kpis.indexOf(kpi) >= 0 && tile.type !== "queue_table") return ["live"];
      return schema.windows.slice();
    }

    function renderTile(doc, index) {
      tileBox.textContent = "";
      var tile = doc && doc.board.tiles[index];
      if (!tile || !schema) {
        el("p", "ed-muted", tileBox, t("edit.no_tile"));
        return;
      }
      var set = function (key, value) { hooks.setTile(index, key, value); };
      var fs = el("fieldset", "ed-fields", tileBox);
      fs.disabled = !!doc.read_only;
      var general = hooks.problems("tiles[" + index + "]", true);
      if (general.length) el("div", "ed-field__error", fs, general.join("; "));
      var types = schema.tile_types.map(function (x) { return [x, label("type." + x, label("edit.type_" + x, x))]; });
      field(fs, "edit.f_type", "tiles[" + index + "].type", select(types, tile.type || "number", function (v) { set("type", v); }));
      var kpis = schema.kpis[tile.type || "number"] || [];
      if (kpis.length) {
        var kopts = kpis.map(function (k) { return [k, label("kpi." + k, k)]; });
        field(fs, "edit.f_kpi", "tiles[" + index + "].kpi", select(kopts, tile.kpi, function (v) { set("kpi", v); }));
      }
      var agentTile = tile.type === "agent_grid" || tile.type === "agent_table";
      if (agentTile) {
        var teams = [["", t("edit.all_teams")]].concat((schema.teams || []).map(function (x) { return [x, x]; }));
        field(fs, "edit.f_team", "tiles[" + index + "].team", select(teams, tile.team, function (v) { set("team", v || null); }));
      }
      if (tile.type !== "clock" && tile.type !== "announcements" && tile.type !== "team_table") {
        // A legal tile needs a queue with a legal rule, a staffing tile a queue: no "site".
        var needsQueue = tile.type === "legal" || tile.type === "staffing";
        var queues = needsQueue ? [] : [["", t("edit.site_wide")]];
        for (var q in schema.queues) if (tile.type !== "legal" || schema.queues[q].legal_rules.length) queues.push([q, schema.queues[q].label === q ? q : schema.queues[q].label + " (" + q + ")"]);
        field(fs, "edit.f_queue", "tiles[" + index + "].queue", select(queues, tile.queue, function (v) { set("queue", v || null); }));
        if (tile.type !== "forecast" && tile.type !== "legal" && tile.type !== "staffing" && !agentTile) {
          var channels = [["", t("edit.site_wide")]].concat(schema.channels.map(function (c) { return [c, c]; }));
          field(fs, "edit.f_channel", "tiles[" + index + "].channel", select(channels, tile.channel, function (v) { set("channel", v || null); }));
        }
      }
      if (tile.type !== "clock" && tile.type !== "announcements" && tile.type !== "agent_grid") {
        var wins = windowsFor(tile).map(function (w) { return [w, label("window." + w, w)]; });
        field(fs, "edit.f_window", "tiles[" + index + "].window", select(wins, tile.window || wins[0][0], function (v) { set("window", v); }));
      }
      if (tile.type === "legal" && tile.queue && schema.queues[tile.queue]) {
        var rules = schema.queues[tile.queue].legal_rules.map(function (r) { return [r, r]; });
        field(fs, "edit.f_rule", "tiles[" + index + "].rule", select([["", t("edit.default")]].concat(rules), tile.rule, function (v) { set("rule", v || null); }));
      }
      field(fs, "edit.f_label", "tiles[" + index + "].label", input("text", tile.label, { maxlength: 200 }, function (v) { set("label", v || null); }));
      var cols = bounds(schema, "TileConfig", "cols");
      var rows = bounds(schema, "TileConfig", "rows");
      field(fs, "edit.f_cols", "tiles[" + index + "].cols", input("number", tile.cols || 1, { min: cols.min, max: cols.max }, function (v) { set("cols", num(v)); }));
      field(fs, "edit.f_rows_span", "tiles[" + index + "].rows", input("number", tile.rows || 1, { min: rows.min, max: rows.max }, function (v) { set("rows", num(v)); }));
      if ((tile.type || "number") === "number") {
        field(fs, "edit.f_trend", "tiles[" + index + "].trend", input("checkbox", tile.trend !== false, {}, function (v) { set("trend", v); }));
      }
      if (tile.kpi) renderThresholds(fs, tile, index);
    }

    function scaleOf(format, values) {
      if (format === "ratio") return { min: 0, max: 1, step: 0.01 };
      var top = 10;
      for (var i = 0; i < values.length; i++) if (typeof values[i] === "number" && isFinite(values[i])) top = Math.max(top, Math.abs(values[i]) * 1.5);
      top = Math.ceil(top);
      return { min: format === "score" ? -top : 0, max: top, step: format === "score" ? 0.1 : 1 };
    }

    function renderThresholds(fs, tile, index) {
      var th = tile.thresholds || {};
      var path = "tiles[" + index + "].thresholds";
      var box = el("fieldset", "ed-thresholds", fs);
      el("legend", null, box, t("edit.thresholds"));
      var errors = hooks.problems(path, true);
      if (errors.length) el("div", "ed-field__error", box, errors.join("; "));
      var dirs = enumOf(schema, "ThresholdConfig", "direction").map(function (d) { return [d, t("edit." + d)]; });
      field(box, "edit.f_direction", path + ".direction", select(dirs, th.direction || "high_bad", function (v) { hooks.setTile(index, "thresholds.direction", v); }));
      var format = schema.formats[tile.kpi] || "count";
      var current = hooks.value(tile);
      var scale = scaleOf(format, [current, th.warn, th.crit]);
      var preview = el("div", "ed-preview");
      preview.setAttribute("role", "status");
      ["warn", "crit"].forEach(function (which) {
        var row = el("div", "ed-threshold", box);
        var key = "edit.f_" + which;
        var number = field(row, key, path + "." + which, input("number", th[which], { step: "any" }, function (v) { hooks.setTile(index, "thresholds." + which, num(v)); }));
        var range = input("range", th[which] === undefined || th[which] === null ? scale.min : th[which], { min: scale.min, max: scale.max, step: scale.step }, function (v) {
          number.value = v;
          hooks.setTile(index, "thresholds." + which, Number(v), true);
          paint();
        }, true);
        range.className = "ed-range ed-range--" + which;
        range.setAttribute("aria-label", t(key));
        range.setAttribute("data-path", path + "." + which);
        row.appendChild(range);
      });
      el("span", "ed-field__label", box, t("edit.preview"));
      box.appendChild(preview);
      function paint() {
        var value = hooks.value(tile);
        var level = WB.levelOf(tile.thresholds, value);
        preview.setAttribute("data-level", level);
        preview.textContent = typeof value === "number" ? I.formatValue(format, value) : t("edit.no_value");
      }
      paint();
      hooks.onValues(paint);
    }

    return {
      setSchema: function (next) { schema = next; },
      renderBoard: renderBoard,
      renderTile: renderTile,
    };
  };
})();
