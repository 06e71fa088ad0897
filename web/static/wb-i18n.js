/* wallboard: message catalogue and Intl formatting for the board's locale (window.WB.i18n).
   The catalogue comes from the server (web/locales/<lang>.json, embedded in the page). */
(function () {
  "use strict";
  var WB = (window.WB = window.WB || {});

  var configEl = document.getElementById("board-config");
  var config = {};
  try {
    config = JSON.parse(configEl ? configEl.textContent : "{}") || {};
  } catch (err) {
    config = {};
  }
  WB.config = config;
  var locale = config.locale || document.documentElement.lang || "en";
  var messages = config.messages && typeof config.messages === "object" ? config.messages : {};

  /** A message by key with {name} placeholders; values are bidi-isolated so a Latin name does
      not reorder Hebrew or Arabic text. */
  function t(id, vars) {
    var text = Object.prototype.hasOwnProperty.call(messages, id) ? messages[id] : id;
    if (vars) {
      for (var name in vars) text = text.split("{" + name + "}").join("\u2068" + vars[name] + "\u2069");
    }
    return text;
  }

  function numberFormat(options) {
    try {
      return new Intl.NumberFormat(locale, options);
    } catch (err) {
      return new Intl.NumberFormat("en", options); // unknown locale tag from the config
    }
  }

  var fmtCount = numberFormat({ maximumFractionDigits: 0 });
  var fmtPercent = numberFormat({ style: "percent", minimumFractionDigits: 0, maximumFractionDigits: 1 });
  var fmtPercent0 = numberFormat({ style: "percent", maximumFractionDigits: 0 });
  var fmtScore = numberFormat({ minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var fmtInt = numberFormat({ maximumFractionDigits: 0, useGrouping: false });
  var fmt2 = numberFormat({ minimumIntegerDigits: 2, maximumFractionDigits: 0, useGrouping: false });
  var DASH = "–";

  var dateFormats = new Map(); // by "zone|kind": built once each
  function dateFormat(zone, kind) {
    var id = (zone || "") + "|" + kind;
    var f = dateFormats.get(id);
    if (f) return f;
    var opts = kind === "date"
      ? { weekday: "long", day: "numeric", month: "long" }
      : kind === "hm" ? { hour: "2-digit", minute: "2-digit" }
        : { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (zone) opts.timeZone = zone;
    try {
      f = new Intl.DateTimeFormat(locale, opts);
    } catch (err) {
      delete opts.timeZone;
      f = new Intl.DateTimeFormat(locale, opts);
    }
    dateFormats.set(id, f);
    return f;
  }

  /** Seconds as m:ss under an hour, h:mm:ss above (wall-clock style, so floor). */
  function formatDuration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var sec = s % 60;
    if (h > 0) return fmtInt.format(h) + ":" + fmt2.format(m) + ":" + fmt2.format(sec);
    return fmtInt.format(m) + ":" + fmt2.format(sec);
  }

  function formatValue(format, value) {
    if (value === null || value === undefined || value === "") return DASH;
    if (typeof value !== "number") return String(value);
    if (!isFinite(value)) return DASH;
    switch (format) {
      case "ratio": return fmtPercent.format(value);
      case "duration": return formatDuration(value);
      case "score": return fmtScore.format(value);
      default: return fmtCount.format(value);
    }
  }

  /** Caption of a window name: from the catalogue, or "4h" → "4 h" by unit. */
  function windowCaption(name) {
    var key = "window." + name;
    if (Object.prototype.hasOwnProperty.call(messages, key)) return messages[key];
    var m = /^(\d+)([smhd])$/.exec(name);
    return m ? t("unit." + m[2], { n: fmtInt.format(Number(m[1])) }) : name;
  }

  /** Rough width of a text in em for bold tabular digits; CSS divides the box width by it. */
  function textEms(text) {
    var ems = 0;
    for (var i = 0; i < text.length; i++) {
      var ch = text.charAt(i);
      if (ch >= "0" && ch <= "9") ems += 0.7;
      else if (ch === ":" || ch === "." || ch === "," || ch === "\u066B" || ch === "\u066C") ems += 0.4;
      else if (ch === " " || ch === "\u00A0" || ch === "\u202F") ems += 0.3;
      else if (ch === "%" || ch === "\u066A") ems += 1.0;
      else if (ch === "\u200E" || ch === "\u200F" || ch === "\u061C" || ch === "\u2068" || ch === "\u2069") ems += 0;
      else ems += 0.75;
    }
    return Math.max(1.4, ems);
  }

  WB.i18n = {
    locale: locale, t: t, DASH: DASH, formatValue: formatValue, formatDuration: formatDuration,
    windowCaption: windowCaption, textEms: textEms, dateFormat: dateFormat,
    count: function (n) { return fmtCount.format(n); },
    int: function (n) { return fmtInt.format(n); },
    percent0: function (n) { return fmtPercent0.format(n); },
  };
})();
