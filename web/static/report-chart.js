/* wallboard interval report: one inline SVG chart per group (WB.reportChart). Bars: offered
   and answered per interval; lines: forecast, offered on the same weekday last week, and the
   service level on its own 0–100% axis. Time runs right to left when the page is RTL: the
   coordinates are mirrored here, so no CSS transform flips the digits. */
(function () {
  "use strict";
  var WB = window.WB;
  var I = WB.i18n;
  var t = I.t;
  var W = 960, H = 260, SIDE = 48, TOP = 14, BOTTOM = 30;
  var X0 = SIDE, X1 = W - SIDE, PLOT_H = H - TOP - BOTTOM;
  var MAX_LABELS = 12;
  var MAX_DOTS = 32;
  var SVGNS = "http://www.w3.org/2000/svg";

  function svg(tag, attrs, parent) {
    var n = document.createElementNS(SVGNS, tag);
    for (var k in attrs) n.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(n);
    return n;
  }

  /** The smallest 1, 2 or 5 × 10^k at or above v (at least 1): round axis ends. */
  function niceMax(v) {
    if (!(v > 1)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(v)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= v) return steps[i] * p;
    return 10 * p;
  }

  /** A polyline through the points that have a value, broken where one is missing. */
  function path(points) {
    var d = "", pen = false;
    points.forEach(function (p) {
      if (p === null) {
        pen = false;
        return;
      }
      d += (pen ? "L" : "M") + p[0].toFixed(1) + " " + p[1].toFixed(1);
      pen = true;
    });
    return d;
  }

  function chart(key, name, slots, mine, theirs) {
    var R = WB.report;
    var num = R.num;
    var rtl = R.rtl;
    var n = Math.max(1, slots.length);
    var step = (X1 - X0) / n;
    var centre = function (i) { return rtl ? X1 - step * (i + 0.5) : X0 + step * (i + 0.5); };
    var value = function (map, s, field) { var r = map.get(s); return r ? num(r[field]) : null; };

    var top = 0;
    slots.forEach(function (s) {
      [value(mine, s, "offered"), value(mine, s, "answered"), value(mine, s, "forecast_offered"),
        value(theirs, s, "offered")].forEach(function (v) { if (v !== null && v > top) top = v; });
    });
    var max = niceMax(top);
    var y = function (v) { return TOP + PLOT_H * (1 - v / max); };
    var ySl = function (v) { return TOP + PLOT_H * (1 - Math.max(0, Math.min(1, v))); };

    var label = t("report.chart", { name: name });
    // Coordinates do the mirroring: the SVG's own text stays LTR so anchors mean what they say.
    var root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": label,
      class: "report__svg", direction: "ltr" });
    svg("title", {}, root).textContent = label;

    // Axes: counts on the side time starts from, the service level on the other.
    var countX = rtl ? X1 + 6 : X0 - 6, slX = rtl ? X0 - 6 : X1 + 6;
    [0, 0.5, 1].forEach(function (f) {
      var gy = TOP + PLOT_H * (1 - f);
      svg("line", { x1: X0, x2: X1, y1: gy, y2: gy, class: "rp-grid" }, root);
      svg("text", { x: countX, y: gy + 4, "text-anchor": rtl ? "start" : "end", class: "rp-axis rp-axis--count" },
        root).textContent = I.count(max * f);
      svg("text", { x: slX, y: gy + 4, "text-anchor": rtl ? "end" : "start", class: "rp-axis rp-axis--sl" },
        root).textContent = I.percent0(f);
    });

    var every = Math.ceil(n / MAX_LABELS);
    var bar = Math.min(step * 0.36, 28); // a day with one interval is not two walls of colour
    slots.forEach(function (s, i) {
      var c = centre(i);
      // Offered before answered in reading order: left of the centre in LTR, right in RTL.
      var bars = [["offered", rtl ? c + step * 0.02 : c - step * 0.02 - bar],
        ["answered", rtl ? c - step * 0.02 - bar : c + step * 0.02]];
      bars.forEach(function (b) {
        var v = value(mine, s, b[0]);
        if (v === null) return;
        svg("rect", { x: b[1].toFixed(1), y: y(v).toFixed(1), width: bar.toFixed(1),
          height: Math.max(0, TOP + PLOT_H - y(v)).toFixed(1), class: "rp-bar rp-bar--" + b[0],
          "data-slot": s, "data-value": v }, root);
      });
      if (i % every === 0) {
        var row = mine.get(s) || theirs.get(s);
        svg("text", { x: c.toFixed(1), y: H - 10, "text-anchor": "middle", class: "rp-axis rp-axis--time",
          "data-slot": s }, root).textContent = row ? R.slotCaption(row).split("–")[0] : s;
      }
    });

    var lines = [["forecast", mine, "forecast_offered", y], ["last-week", theirs, "offered", y],
      ["sl", mine, "service_level", ySl]];
    lines.forEach(function (line) {
      var points = slots.map(function (s, i) {
        var v = value(line[1], s, line[2]);
        return v === null ? null : [centre(i), line[3](v)];
      });
      svg("path", { d: path(points), class: "rp-line rp-line--" + line[0], fill: "none" }, root);
      // Dots mark the values while they are few; on a dense day the line alone reads better
      // (and 96 slots × 3 lines × every queue would be thousands of nodes).
      if (slots.length > MAX_DOTS) return;
      points.forEach(function (p, i) {
        if (p === null) return;
        svg("circle", { cx: p[0].toFixed(1), cy: p[1].toFixed(1), r: 3, class: "rp-dot rp-dot--" + line[0],
          "data-slot": slots[i], "data-value": value(line[1], slots[i], line[2]) }, root);
      });
    });

    var figure = document.createElement("figure");
    figure.className = "report__chart";
    figure.setAttribute("data-group", key);
    var caption = document.createElement("figcaption");
    caption.textContent = name;
    figure.appendChild(caption);
    figure.appendChild(root);
    figure.appendChild(legend());
    return figure;
  }

  function legend() {
    var list = document.createElement("ul");
    list.className = "report__legend";
    [["offered", "report.col_offered"], ["answered", "report.col_answered"],
      ["forecast", "report.col_forecast"], ["last-week", "report.legend_last_week"],
      ["sl", "report.col_sl"]].forEach(function (item) {
      var li = document.createElement("li");
      li.className = "report__key report__key--" + item[0];
      li.textContent = t(item[1]);
      list.appendChild(li);
    });
    return list;
  }

  WB.reportChart = chart;
})();
