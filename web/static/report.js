/* wallboard interval report (/report): reads /api/report for the chosen day and the same
   weekday a week before, and shows a table, an SVG chart per group and the day's totals.

   Rules this file keeps:
   - Server strings go into the DOM with textContent only (queue labels may be hostile).
   - The admin token travels in the Authorization header only, never in a URL; it is kept in
     sessionStorage (this tab), dropped when the server refuses it.
   - Every response is checked for shape: a malformed one is shown as an error, never thrown. */
(function () {
  "use strict";
  var WB = window.WB;
  var config = WB.config;
  var I = WB.i18n;
  var t = I.t;
  var TOKEN_KEY = "wallboard.admin_token";
  var COLUMNS = ["time", "offered", "forecast", "offered_last_week", "answered", "abandoned",
    "sl", "sl_last_week", "asa", "aht", "abandon_rate", "wait_p90"];
  var rtl = document.documentElement.dir === "rtl";
  var fmtOne = new Intl.NumberFormat(I.locale, { maximumFractionDigits: 1 });

  var el = function (id) { return document.getElementById(id); };
  var main = el("rp-main"), dayInput = el("rp-day"), intervalSelect = el("rp-interval");
  var queueBox = el("rp-queues"), csvButton = el("rp-csv"), statusEl = el("rp-status");
  var tokenBox = el("rp-token"), tokenInput = el("rp-token-input");
  var tablesEl = el("rp-tables"), headTemplate = el("rp-head");
  var chartsEl = el("rp-charts"), summaryEl = el("rp-summary");

  // Exposed for tests and the operator's console: the last responses as received.
  var report = (window.report = { today: null, lastWeek: null, todayTotal: null, lastTotal: null,
    queues: {}, loads: 0, renderMs: null, reload: null });
  var generation = 0; // a newer load makes older responses moot

  function node(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined) n.textContent = text;
    return n;
  }

  function setState(state, message) {
    main.setAttribute("data-state", state);
    statusEl.textContent = message || "";
  }

  // ---------- dates and parameters ----------

  function minusDays(day, n) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
    if (!m) return day;
    var d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3] - n));
    return d.toISOString().slice(0, 10);
  }

  function dayCaption(day) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
    if (!m) return day;
    var opts = { weekday: "long", day: "numeric", month: "long", year: "numeric", timeZone: "UTC" };
    return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3])).toLocaleDateString(I.locale, opts);
  }

  function selectedQueues() {
    var boxes = queueBox.querySelectorAll("input[type=checkbox]");
    var chosen = [];
    for (var i = 0; i < boxes.length; i++) if (boxes[i].checked) chosen.push(boxes[i].value);
    // Every queue ticked (or none listed yet) is the whole site: no queue= at all.
    return chosen.length === boxes.length ? [] : chosen;
  }

  function query(day, interval, format) {
    var q = new URLSearchParams({ from: day, to: day, interval: interval, format: format });
    selectedQueues().forEach(function (name) { q.append("queue", name); });
    return "/api/report?" + q.toString();
  }

  // ---------- fetching ----------

  function authHeaders() {
    var token = config.access ? sessionStorage.getItem(TOKEN_KEY) : null;
    return token ? { Authorization: "Bearer " + token } : {};
  }

  function Refused(status, reason) {
    this.status = status;
    this.reason = reason;
  }

  function get(url) {
    return fetch(url, { headers: authHeaders(), cache: "no-store" }).then(function (res) {
      if (res.ok) return res;
      return res.text().then(function (text) {
        throw new Refused(res.status, String(text).slice(0, 300));
      });
    });
  }

  function getReport(day, interval) {
    return get(query(day, interval, "json")).then(function (res) { return res.json(); })
      .then(function (body) {
        if (!body || typeof body !== "object" || !Array.isArray(body.rows)) {
          throw new Refused(0, "the answer has no rows");
        }
        return body;
      });
  }

  function askToken(message) {
    tokenBox.hidden = false;
    csvButton.disabled = true;
    setState("token", message);
    tokenInput.focus();
  }

  function failed(err) {
    if (err instanceof Refused && (err.status === 401 || err.status === 403) && config.access) {
      sessionStorage.removeItem(TOKEN_KEY);
      askToken(t("report.refused", { status: err.status, reason: err.reason }));
    } else if (err instanceof Refused && err.status) {
      setState("error", t("report.refused", { status: err.status, reason: err.reason }));
    } else {
      setState("error", t("report.error", { reason: err && (err.reason || err.message) || String(err) }));
    }
  }

  function load() {
    if (config.access && !sessionStorage.getItem(TOKEN_KEY)) {
      askToken(t("report.need_token"));
      return Promise.resolve();
    }
    var mine = ++generation;
    var day = dayInput.value || config.today;
    var last = minusDays(day, 7);
    var interval = intervalSelect.value;
    setState("loading", t("report.loading"));
    // Last week's absence (outside retention, a refusal) must not hide the selected day.
    var soft = function (p) { return p.catch(function () { return null; }); };
    var daily = interval === "1d";
    return Promise.all([
      getReport(day, interval), soft(getReport(last, interval)),
      daily ? null : getReport(day, "1d"), daily ? null : soft(getReport(last, "1d")),
    ]).then(function (got) {
      if (mine !== generation) return;
      var fetched = performance.now();
      report.today = got[0];
      report.lastWeek = got[1];
      report.todayTotal = daily ? got[0] : got[2];
      report.lastTotal = daily ? got[1] : got[3];
      report.day = day;
      report.lastDay = last;
      tokenBox.hidden = true;
      csvButton.disabled = false;
      rememberQueues(got[0].queues);
      render();
      // What bench/report_page.py reads: drawing time, after the answers were parsed.
      report.renderMs = performance.now() - fetched;
      report.loads++;
      setState("ready", report.today.rows.length ? "" : t("report.no_data"));
    }, function (err) {
      if (mine === generation) failed(err);
    });
  }

  function downloadCsv() {
    var day = dayInput.value || config.today;
    var interval = intervalSelect.value;
    var name = "report-" + day + "-" + interval + ".csv";
    return get(query(day, interval, "csv")).then(function (res) {
      // The server's name for the file, when it gives one (Content-Disposition).
      var given = /filename="([^"\\/]+)"/.exec(res.headers.get("Content-Disposition") || "");
      if (given) name = given[1];
      return res.blob();
    }).then(function (blob) {
      // A blob: URL carries no token; the header did, on the fetch above.
      var link = node("a");
      link.href = URL.createObjectURL(blob);
      link.download = name;
      document.body.appendChild(link);
      link.click();
      link.remove();
      setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
    }, failed);
  }

  // ---------- queues ----------

  function rememberQueues(queues) {
    if (!queues || typeof queues !== "object") return;
    for (var name in queues) {
      if (name === "__proto__" || Object.prototype.hasOwnProperty.call(report.queues, name)) continue;
      var info = queues[name] && typeof queues[name] === "object" ? queues[name] : {};
      report.queues[name] = info;
      var label = node("label", "report__queue");
      var box = Object.assign(node("input"), { type: "checkbox", value: name, checked: true });
      box.addEventListener("change", queueTicked);
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + String(info.label || name)));
      queueBox.appendChild(label);
    }
  }

  function queueTicked(e) {
    // No queue at all is no report: the last ticked one stays ticked.
    if (!queueBox.querySelector("input:checked")) e.target.checked = true;
    else load();
  }

  function queueLabel(name) {
    var info = report.queues[name];
    return String((info && info.label) || name);
  }

  // ---------- grouping ----------

  /** Site and queue rows by group ("site", "queue:Q"), each a Map from the interval's place in
      its day (its local start time, "day" for a whole day) to the row. */
  function groups(body, daily) {
    var out = new Map();
    var rows = body && Array.isArray(body.rows) ? body.rows : [];
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (!row || typeof row !== "object" || typeof row.start !== "string") continue;
      var key = row.level === "site" ? "site" : row.level === "queue" ? "queue:" + row.queue : null;
      if (!key) continue; // channel and team rows belong to the CSV and the API
      if (!out.has(key)) out.set(key, new Map());
      out.get(key).set(daily ? "day" : row.start.slice(11, 16), row);
    }
    return out;
  }

  function slotCaption(row) {
    if (intervalSelect.value === "1d") return dayCaption(row.start.slice(0, 10));
    return row.start.slice(11, 16) + "–" + String(row.end || "").slice(11, 16);
  }

  function target(key) {
    if (key !== "site") {
      var info = report.queues[key.slice(6)];
      return info && typeof info.sl_target === "number" ? info.sl_target : null;
    }
    // The site has a target only when every queue shares one.
    var shared = null;
    for (var name in report.queues) {
      var q = report.queues[name].sl_target;
      if (typeof q !== "number" || (shared !== null && q !== shared)) return null;
      shared = q;
    }
    return shared;
  }

  function slLevel(value, goal) {
    if (typeof value !== "number" || goal === null) return "none";
    if (value >= goal - 1e-9) return "ok";
    return value >= goal - config.sl_warn_band - 1e-9 ? "warn" : "crit";
  }

  function abandonLevel(value) {
    if (typeof value !== "number") return "none";
    return value >= config.abandon_crit ? "crit" : value >= config.abandon_warn ? "warn" : "ok";
  }

  // ---------- rendering ----------

  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }

  function cells(row, last) {
    var r = row || {};
    var l = last || {};
    return {
      offered: I.formatValue("count", num(r.offered)),
      forecast: num(r.forecast_offered) === null ? I.DASH : fmtOne.format(r.forecast_offered),
      offered_last_week: I.formatValue("count", num(l.offered)),
      answered: I.formatValue("count", num(r.answered)),
      abandoned: I.formatValue("count", num(r.abandoned)),
      sl: I.formatValue("ratio", num(r.service_level)),
      sl_last_week: I.formatValue("ratio", num(l.service_level)),
      asa: I.formatValue("duration", num(r.asa_s)),
      aht: I.formatValue("duration", num(r.aht_s)),
      abandon_rate: I.formatValue("ratio", num(r.abandon_rate)),
      wait_p90: I.formatValue("duration", num(r.wait_p90_s)),
    };
  }

  // A row's cells, made once and cloned: a day of fifty queues is five thousand rows.
  var rowTemplate = (function () {
    var tr = node("tr");
    COLUMNS.forEach(function (col, i) {
      var cell = node(i === 0 ? "th" : "td");
      if (i === 0) cell.scope = "row";
      cell.setAttribute("data-col", col);
      tr.appendChild(cell);
    });
    return tr;
  })();
  var SL_AT = COLUMNS.indexOf("sl"), ABANDON_AT = COLUMNS.indexOf("abandon_rate");

  function tableRow(cls, caption, row, last, goal) {
    var tr = rowTemplate.cloneNode(true);
    tr.className = cls;
    var text = cells(row, last);
    var cellsOf = tr.children;
    cellsOf[0].textContent = caption;
    for (var i = 1; i < COLUMNS.length; i++) cellsOf[i].textContent = text[COLUMNS[i]];
    cellsOf[SL_AT].setAttribute("data-level", slLevel(row && row.service_level, goal));
    cellsOf[ABANDON_AT].setAttribute("data-level", abandonLevel(row && row.abandon_rate));
    return tr;
  }


  function sortedSlots(a, b) {
    var keys = new Set();
    (a ? Array.from(a.keys()) : []).forEach(function (k) { keys.add(k); });
    (b ? Array.from(b.keys()) : []).forEach(function (k) { keys.add(k); });
    return Array.from(keys).sort();
  }

  function render() {
    var daily = intervalSelect.value === "1d";
    var today = groups(report.today, daily), last = groups(report.lastWeek, daily);
    var totals = groups(report.todayTotal, true), lastTotals = groups(report.lastTotal, true);
    var keys = Array.from(today.keys()).concat(Array.from(last.keys()).filter(function (k) {
      return !today.has(k);
    }));
    keys.sort(function (a, b) { return (a === "site" ? "" : a) < (b === "site" ? "" : b) ? -1 : 1; });
    // Built off the page, then put in at once: one style and layout pass, not one per group.
    var tables = document.createDocumentFragment(), charts = document.createDocumentFragment();
    keys.forEach(function (key) {
      var name = key === "site" ? t("report.site") : queueLabel(key.slice(6));
      var goal = target(key);
      var mine = today.get(key) || new Map(), theirs = last.get(key) || new Map();
      var slots = sortedSlots(mine, theirs);
      // One table per group, each laid out only when scrolled to (content-visibility).
      var block = node("div", "report__block");
      block.style.containIntrinsicSize = "auto " + (80 + 28 * (slots.length + 1)) + "px";
      var tbl = node("table", "report__table");
      tbl.setAttribute("data-group", key);
      tbl.appendChild(node("caption", "report__group", name));
      tbl.appendChild(headTemplate.content.cloneNode(true));
      var body = node("tbody");
      body.setAttribute("data-group", key);
      slots.forEach(function (s) {
        var row = mine.get(s), before = theirs.get(s);
        var tr = tableRow("report__row", slotCaption(row || before), row, before, goal);
        tr.setAttribute("data-slot", s);
        body.appendChild(tr);
      });
      if (!daily) {
        var total = (totals.get(key) || new Map()).get("day");
        var lastTotal = (lastTotals.get(key) || new Map()).get("day");
        body.appendChild(tableRow("report__total", t("report.total"), total, lastTotal, goal));
      }
      tbl.appendChild(body);
      block.appendChild(tbl);
      tables.appendChild(block);
      charts.appendChild(WB.reportChart(key, name, slots, mine, theirs));
    });
    tablesEl.textContent = "";
    chartsEl.textContent = "";
    tablesEl.appendChild(tables);
    chartsEl.appendChild(charts);
    renderSummary(totals.get("site"), lastTotals.get("site"));
  }

  function renderSummary(today, last) {
    summaryEl.textContent = "";
    var row = today && today.get("day"), before = last && last.get("day");
    var grid = node("dl", "report__figures");
    var days = [["report.this_day", report.day, row], ["report.last_week", report.lastDay, before]];
    days.forEach(function (item) {
      var box = node("div", "report__figure");
      box.setAttribute("data-day", item[1]);
      box.appendChild(node("dt", null, t(item[0], { day: dayCaption(item[1]) })));
      var text = cells(item[2], null);
      [["offered", t("report.col_offered") + " " + text.offered],
        ["service_level", t("report.col_sl") + " " + text.sl]].forEach(function (figure) {
        box.appendChild(node("dd", null, figure[1])).setAttribute("data-field", figure[0]);
      });
      grid.appendChild(box);
    });
    summaryEl.appendChild(grid);
  }

  report.reload = function () { return load(); };
  WB.report = { rtl: rtl, num: num, slotCaption: slotCaption };

  // ---------- wiring ----------

  dayInput.addEventListener("change", load);
  intervalSelect.addEventListener("change", load);
  csvButton.addEventListener("click", downloadCsv);
  function saveToken() {
    var value = tokenInput.value.trim();
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    tokenInput.value = "";
    load();
  }
  el("rp-token-save").addEventListener("click", saveToken);
  tokenInput.addEventListener("keydown", function (e) { if (e.key === "Enter") saveToken(); });
  // The chart's script is loaded after this one; the first load waits for the page.
  window.addEventListener("DOMContentLoaded", load);
})();
