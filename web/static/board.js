/* wallboard TV board: keeps a flat key → value map in sync with the server over a WebSocket
   and paints the server-rendered tiles.

   Rules this file keeps:
   - Server strings go into the DOM with textContent only (queue labels may be hostile).
   - Memory stays flat over a day: no per-message arrays, listeners or DOM nodes; a tile's DOM
     is touched only when its text or class actually changes.
   - Never silently stale: a lost connection shows a full-screen overlay; a tile whose source
     is down or stale gets a badge and a dimmed value.
   - Tiles never read keys they build themselves except sources.<name>.* (parsed, see below). */
(function () {
  "use strict";

  // ---------- configuration ----------

  var configEl = document.getElementById("board-config");
  var config = {};
  try {
    config = JSON.parse(configEl ? configEl.textContent : "{}") || {};
  } catch (err) {
    config = {};
  }
  var locale = config.locale || document.documentElement.lang || "en";
  var staleAfterMs = Math.max(1, Number(config.stale_after_s) || 5) * 1000;

  var BACKOFF_START_MS = 500;
  var BACKOFF_CAP_MS = 30000;
  var TICK_MS = 250; // one timer drives clock, countdown and watchdog
  var FIRST_CONNECT_GRACE_MS = 1500; // no "lost" overlay flash on a normal page load

  // ---------- strings (small built-in catalogue; the server's locale picks one) ----------

  var STRINGS = {
    en: {
      live: "live", "15m": "15 min", "1h": "1 h", today: "today",
      lost: "Connection lost", connecting: "Connecting…",
      retryIn: "reconnecting in {n} s", retrying: "reconnecting…",
      lastUpdate: "last update {t}", down: "{name} down", stale: "{name} stale",
      noData: "{name}: no data {age}", more: "+{n}", journalDown: "journal down",
      unit_s: "{n} s", unit_m: "{n} min", unit_h: "{n} h", unit_d: "{n} d",
    },
    he: {
      live: "עכשיו", "15m": "15 דק׳", "1h": "שעה", today: "היום",
      lost: "החיבור אבד", connecting: "מתחבר…",
      retryIn: "מתחבר מחדש בעוד {n} שנ׳", retrying: "מתחבר מחדש…",
      lastUpdate: "עדכון אחרון {t}", down: "{name} מנותק", stale: "{name} לא מעודכן",
      noData: "{name}: אין נתונים {age}", more: "+{n}", journalDown: "יומן האירועים לא זמין",
      unit_s: "{n} שנ׳", unit_m: "{n} דק׳", unit_h: "{n} שע׳", unit_d: "{n} ימים",
    },
    ar: {
      live: "مباشر", "15m": "15 دقيقة", "1h": "ساعة", today: "اليوم",
      lost: "انقطع الاتصال", connecting: "جارٍ الاتصال…",
      retryIn: "إعادة الاتصال خلال {n} ث", retrying: "جارٍ إعادة الاتصال…",
      lastUpdate: "آخر تحديث {t}", down: "{name} متوقف", stale: "{name} غير محدث",
      noData: "{name}: لا بيانات منذ {age}", more: "+{n}", journalDown: "سجل الأحداث غير متاح",
      unit_s: "{n} ث", unit_m: "{n} دقيقة", unit_h: "{n} ساعة", unit_d: "{n} يوم",
    },
  };
  var strings = STRINGS[String(locale).toLowerCase().split(/[-_]/)[0]] || STRINGS.en;

  function t(id, vars) {
    var text = strings[id] || STRINGS.en[id] || id;
    if (vars) {
      // First-strong isolates keep a Latin source name from reordering Hebrew/Arabic text.
      for (var name in vars) text = text.split("{" + name + "}").join("\u2068" + vars[name] + "\u2069");
    }
    return text;
  }

  /** Caption of a window name: "live", "today", "15m" → "15 min", "4h" → "4 h", else as is. */
  function windowCaption(name) {
    if (strings[name] || STRINGS.en[name]) return t(name);
    var m = /^(\d+)([smhd])$/.exec(name);
    return m ? t("unit_" + m[2], { n: fmtInt.format(Number(m[1])) }) : name;
  }

  // ---------- number formatting (formatters built once) ----------

  function numberFormat(options) {
    try {
      return new Intl.NumberFormat(locale, options);
    } catch (err) {
      return new Intl.NumberFormat("en", options); // unknown locale tag from the config
    }
  }

  var fmtCount = numberFormat({ maximumFractionDigits: 0 });
  var fmtPercent = numberFormat({ style: "percent", minimumFractionDigits: 0, maximumFractionDigits: 1 });
  var fmtScore = numberFormat({ minimumFractionDigits: 1, maximumFractionDigits: 1 });
  var fmtInt = numberFormat({ maximumFractionDigits: 0, useGrouping: false });
  var fmt2 = numberFormat({ minimumIntegerDigits: 2, maximumFractionDigits: 0, useGrouping: false });
  /** Clock in the site's time zone (config.timezone or the server's meta.timezone), else the
      TV's own zone; rebuilt only when the zone changes. */
  var clockZone = null;
  var clockFormat = null;
  function clockFormatter(zone) {
    if (clockFormat && zone === clockZone) return clockFormat;
    clockZone = zone;
    var opts = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
    if (zone) opts.timeZone = zone;
    try {
      clockFormat = new Intl.DateTimeFormat(locale, opts);
    } catch (err) {
      clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    }
    return clockFormat;
  }

  var DASH = "–";

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

  /** Rough width of a text in em for the bold tabular digits of common system fonts;
      board.css divides the tile width by it to pick a font size that fits. */
  function textEms(text) {
    var ems = 0;
    for (var i = 0; i < text.length; i++) {
      var ch = text.charAt(i);
      if (ch >= "0" && ch <= "9") ems += 0.7;
      else if (ch === ":" || ch === "." || ch === "," || ch === "\u066B" || ch === "\u066C") ems += 0.4;
      else if (ch === " " || ch === "\u00A0" || ch === "\u202F") ems += 0.3;
      else if (ch === "%" || ch === "\u066A") ems += 1.0;
      else if (ch === "\u200E" || ch === "\u200F" || ch === "\u061C") ems += 0; // bidi marks
      else ems += 0.75;
    }
    return Math.max(1.4, ems);
  }

  // ---------- thresholds ----------

  function levelOf(thresholds, value) {
    if (!thresholds || typeof value !== "number" || !isFinite(value)) return "none";
    var warn = thresholds.warn;
    var crit = thresholds.crit;
    var hasWarn = typeof warn === "number";
    var hasCrit = typeof crit === "number";
    if (!hasWarn && !hasCrit) return "none";
    if (thresholds.direction === "low_bad") {
      if (hasCrit && value <= crit) return "crit";
      if (hasWarn && value <= warn) return "warn";
      return "ok";
    }
    if (hasCrit && value >= crit) return "crit";
    if (hasWarn && value >= warn) return "warn";
    return "ok";
  }

  // ---------- state ----------

  // Exposed for tests and for the kiosk operator's console.
  var board = (window.wallboard = { state: {}, seq: null, connected: false });
  var state = board.state;
  // sources.<name>.<field> parsed out of the flat data: name -> {status, last_error, last_event_ts}.
  // Bounded by the number of configured sources.
  var sources = new Map();

  function trackSourceKey(key, value, removed) {
    if (key.lastIndexOf("sources.", 0) !== 0) return;
    var dot = key.lastIndexOf(".");
    if (dot <= 8) return;
    var name = key.slice(8, dot);
    var field = key.slice(dot + 1);
    var entry = sources.get(name);
    if (removed) {
      if (entry) {
        delete entry[field];
        if (entry.status === undefined && entry.last_event_ts === undefined && entry.last_error === undefined) {
          sources.delete(name);
        }
      }
      return;
    }
    if (!entry) {
      entry = {};
      sources.set(name, entry);
    }
    entry[field] = value;
  }

  function applySnapshot(data) {
    state = board.state = {};
    sources.clear();
    for (var key in data) {
      if (key === "__proto__") continue;
      state[key] = data[key];
      trackSourceKey(key, data[key], false);
    }
  }

  function applyDelta(changes, removed) {
    var key;
    for (key in changes) {
      if (key === "__proto__") continue;
      state[key] = changes[key];
      trackSourceKey(key, changes[key], false);
    }
    if (removed) {
      for (var i = 0; i < removed.length; i++) {
        key = String(removed[i]);
        delete state[key];
        trackSourceKey(key, null, true);
      }
    }
  }

  // ---------- tiles ----------

  var grid = document.getElementById("wb-grid");
  var tiles = [];

  /** Build a tile's DOM when the server did not render it (normally it does). */
  function createTileElement(def) {
    var section = document.createElement("section");
    section.className = "tile tile--none";
    section.setAttribute("data-tile", String(def.id));
    section.setAttribute("data-level", "none");
    var label = document.createElement("div");
    label.className = "tile__label";
    label.textContent = def.label == null ? "" : String(def.label);
    var value = document.createElement("div");
    value.className = "tile__value tile__value--empty";
    var num = document.createElement("span");
    num.className = "tile__num";
    num.textContent = DASH;
    value.appendChild(num);
    var foot = document.createElement("div");
    foot.className = "tile__foot";
    var win = document.createElement("span");
    win.className = "tile__window";
    win.setAttribute("data-window", String(def.window || ""));
    var badge = document.createElement("span");
    badge.className = "tile__stale";
    badge.hidden = true;
    foot.appendChild(win);
    foot.appendChild(badge);
    section.appendChild(label);
    section.appendChild(value);
    section.appendChild(foot);
    grid.appendChild(section);
    return section;
  }

  function setupTiles() {
    var byId = new Map();
    var children = grid ? grid.querySelectorAll("[data-tile]") : [];
    for (var i = 0; i < children.length; i++) byId.set(children[i].getAttribute("data-tile"), children[i]);
    var defs = Array.isArray(config.tiles) ? config.tiles : [];
    for (var j = 0; j < defs.length; j++) {
      var def = defs[j];
      var el = byId.get(String(def.id)) || (grid ? createTileElement(def) : null);
      if (!el) continue;
      var win = el.querySelector(".tile__window");
      if (win) win.textContent = windowCaption(String(def.window || "live"));
      tiles.push({
        def: def,
        el: el,
        valueEl: el.querySelector(".tile__value"),
        numEl: el.querySelector(".tile__num"),
        badgeEl: el.querySelector(".tile__stale"),
        // What is on screen now; the DOM is written only when these change.
        text: DASH,
        level: "none",
        staleText: "",
        // Parsed copy of the value at sources_key, re-split only when that string changes.
        sourcesRaw: undefined,
        sourcesList: [],
        fit: 1,
      });
    }
  }

  // Tiles whose text changed since the last fit pass (reused; never grows past tiles.length).
  var fitQueue = [];

  /** Shrink values whose estimated width was still too wide (rare: odd fonts, long counts).
      Writes, then reads, then writes, so a render forces one layout, not one per tile. */
  function fitPending() {
    var i;
    if (!fitQueue.length) return;
    for (i = 0; i < fitQueue.length; i++) fitQueue[i].valueEl.style.setProperty("--fit", "1");
    for (i = 0; i < fitQueue.length; i++) {
      var el = fitQueue[i].valueEl;
      var avail = el.clientWidth;
      var need = el.scrollWidth;
      fitQueue[i].fit = avail > 0 && need > avail ? Math.max(0.2, (avail / need) * 0.97) : 1;
    }
    for (i = 0; i < fitQueue.length; i++) {
      if (fitQueue[i].fit !== 1) fitQueue[i].valueEl.style.setProperty("--fit", String(fitQueue[i].fit));
    }
    fitQueue.length = 0;
  }

  function setText(tile, text) {
    if (text === tile.text) return;
    tile.text = text;
    tile.numEl.textContent = text;
    tile.valueEl.style.setProperty("--chars", String(textEms(text)));
    tile.valueEl.classList.toggle("tile__value--empty", text === DASH);
    if (fitQueue.indexOf(tile) < 0) fitQueue.push(tile);
  }

  function setLevel(tile, level) {
    if (level === tile.level) return;
    var previous = tile.level;
    tile.level = level;
    var cls = tile.el.classList;
    cls.remove("tile--" + previous);
    cls.add("tile--" + level);
    tile.el.setAttribute("data-level", level);
    if (level === "crit") {
      // Hook for an audible alert; fired on the transition into red only.
      window.dispatchEvent(new CustomEvent("wallboard:alert", {
        detail: { tile: tile.def.id, level: level, label: tile.def.label, value: state[tile.def.key] },
      }));
    }
  }

  /** One source's problem as badge text, or "" when it is fine. */
  function sourceProblem(name, entry, now) {
    if (!entry) return "";
    if (entry.status === "down") return t("down", { name: name });
    if (entry.status !== "stale") return "";
    var last = entry.last_event_ts;
    if (typeof now === "number" && typeof last === "number" && now >= last) {
      return t("noData", { name: name, age: formatDuration(now - last) });
    }
    return t("stale", { name: name });
  }

  /** Badge text for a tile: problems of the sources feeding its value. When the tile has no
      sources_key, or no source has fed its queue yet, every source counts (conservative). */
  function staleText(tile) {
    var now = state["meta.ts"];
    var list = null;
    var key = tile.def.sources_key;
    if (key) {
      var raw = state[key];
      if (raw !== tile.sourcesRaw) {
        tile.sourcesRaw = raw;
        tile.sourcesList = typeof raw === "string" && raw
          ? raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean)
          : [];
      }
      if (tile.sourcesList.length) list = tile.sourcesList;
    }
    var first = "";
    var count = 0;
    if (list) {
      for (var i = 0; i < list.length; i++) {
        var p = sourceProblem(list[i], sources.get(list[i]), now);
        if (p) {
          if (!count) first = p;
          count++;
        }
      }
    } else {
      sources.forEach(function (entry, name) {
        var p = sourceProblem(name, entry, now);
        if (p) {
          if (!count) first = p;
          count++;
        }
      });
    }
    if (!count) return "";
    return count > 1 ? first + " " + t("more", { n: fmtInt.format(count - 1) }) : first;
  }

  function setStale(tile, text) {
    if (text === tile.staleText) return;
    tile.staleText = text;
    tile.el.classList.toggle("tile--stale", !!text);
    tile.badgeEl.textContent = text ? "\u26A0 " + text : "";
    tile.badgeEl.hidden = !text;
  }

  function renderTiles() {
    for (var i = 0; i < tiles.length; i++) {
      var tile = tiles[i];
      var value = state[tile.def.key];
      setText(tile, formatValue(tile.def.format, value));
      setLevel(tile, levelOf(tile.def.thresholds, value));
      setStale(tile, staleText(tile));
    }
    fitPending();
    renderJournal();
    var site = state["meta.site"];
    if (typeof site === "string" && site && siteEl && siteEl.textContent !== site) siteEl.textContent = site;
  }

  // ---------- header, overlay ----------

  var siteEl = document.getElementById("wb-site");
  var journalEl = document.getElementById("wb-journal");

  /** "journal down" in the status line while the server cannot store events. */
  function renderJournal() {
    if (!journalEl) return;
    var down = state["meta.journal"] === "down";
    if (journalEl.hidden === down) journalEl.hidden = !down;
    setIfChanged(journalEl, down ? "\u26A0 " + t("journalDown") : "");
  }
  var clockEl = document.getElementById("wb-clock");
  var dotEl = document.getElementById("wb-conn");
  var overlayEl = document.getElementById("wb-overlay");
  var overlayTitleEl = document.getElementById("wb-overlay-title");
  var overlayDetailEl = document.getElementById("wb-overlay-detail");
  var overlayLastEl = document.getElementById("wb-overlay-last");

  function setIfChanged(el, text) {
    if (el && el.textContent !== text) el.textContent = text;
  }

  var skewMs = 0; // server clock minus ours: the TV's clock is often wrong
  var lastDataAt = 0; // our time of the last snapshot/delta, for the overlay

  function renderClock(now) {
    var zone = config.timezone || state["meta.timezone"] || "";
    setIfChanged(clockEl, clockFormatter(typeof zone === "string" ? zone : "").format(new Date(now + skewMs)));
  }

  function renderConnection(now) {
    var dotState = board.connected ? "connected" : (everConnected ? "down" : "connecting");
    if (dotEl && dotEl.getAttribute("data-state") !== dotState) {
      dotEl.setAttribute("data-state", dotState);
      dotEl.setAttribute("aria-label", dotState);
    }
    if (!overlayEl) return;
    var show = !board.connected && (everConnected || now - pageStart > FIRST_CONNECT_GRACE_MS);
    if (overlayEl.hidden === show) overlayEl.hidden = !show;
    if (!show) return;
    setIfChanged(overlayTitleEl, everConnected || retryAt ? t("lost") : t("connecting"));
    var detail = retryAt > now
      ? t("retryIn", { n: fmtInt.format(Math.max(1, Math.ceil((retryAt - now) / 1000))) })
      : t("retrying");
    setIfChanged(overlayDetailEl, detail);
    setIfChanged(overlayLastEl, lastDataAt ? t("lastUpdate", { t: clockFormatter(clockZone).format(new Date(lastDataAt + skewMs)) }) : "");
  }

  // ---------- connection ----------

  var ws = null;
  var generation = 0; // bumps on every new socket; events of older sockets are ignored
  var attempt = 0;
  var retryTimer = 0;
  var retryAt = 0;
  var lastActivity = 0;
  var resyncSince = 0; // when we asked for a resync after a seq gap (0 = not waiting)
  var everConnected = false;
  var pageStart = Date.now();

  function socketUrl() {
    var path = typeof config.ws_path === "string" && config.ws_path.charAt(0) === "/"
      ? config.ws_path
      : "/ws?board=" + encodeURIComponent(config.board || "");
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  function connect() {
    clearTimeout(retryTimer);
    retryAt = 0;
    var gen = ++generation;
    var sock;
    try {
      sock = new WebSocket(socketUrl());
    } catch (err) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    lastActivity = Date.now();
    resyncSince = 0;
    sock.onopen = function () {
      if (gen === generation) lastActivity = Date.now();
    };
    sock.onmessage = function (ev) {
      if (gen === generation) onMessage(ev.data);
    };
    sock.onerror = sock.onclose = function () {
      if (gen === generation) dropConnection();
    };
  }

  /** Forget the current socket (however it failed) and plan the next attempt. */
  function dropConnection() {
    generation++;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
      try {
        ws.close();
      } catch (err) { /* already closed */ }
      ws = null;
    }
    board.connected = false;
    scheduleReconnect();
    renderConnection(Date.now());
  }

  /** Exponential back-off with "equal jitter": half fixed, half random, so a room full of
      TVs does not reconnect in lockstep after a server restart. */
  function scheduleReconnect() {
    clearTimeout(retryTimer);
    var ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * Math.pow(2, Math.min(attempt, 16)));
    var delay = ceiling / 2 + Math.random() * (ceiling / 2);
    attempt++;
    retryAt = Date.now() + delay;
    retryTimer = setTimeout(connect, delay);
  }

  function send(obj) {
    if (ws && ws.readyState === 1) {
      try {
        ws.send(JSON.stringify(obj));
      } catch (err) { /* the close handler will reconnect */ }
    }
  }

  function onMessage(raw) {
    var now = Date.now();
    lastActivity = now;
    var msg;
    try {
      msg = JSON.parse(raw);
    } catch (err) {
      return;
    }
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "snapshot") {
      applySnapshot(msg.data && typeof msg.data === "object" ? msg.data : {});
      board.seq = msg.seq;
      resyncSince = 0;
      attempt = 0; // a working server resets the back-off
      everConnected = true;
      board.connected = true;
    } else if (msg.type === "delta") {
      if (resyncSince || board.seq === null || msg.seq !== board.seq + 1) {
        // Gap (or a delta before any snapshot): this delta is unusable; ask for a snapshot once.
        if (!resyncSince) {
          resyncSince = now;
          send({ type: "resync" });
        }
        return;
      }
      applyDelta(msg.changes && typeof msg.changes === "object" ? msg.changes : {},
        Array.isArray(msg.removed) ? msg.removed : null);
      board.seq = msg.seq;
    } else {
      return;
    }
    lastDataAt = now;
    var ts = state["meta.ts"];
    if (typeof ts === "number") skewMs = ts * 1000 - now;
    renderTiles();
    renderConnection(now);
  }

  /** Clock, overlay countdown and the dead-connection watchdog on a single timer. */
  function tick() {
    var now = Date.now();
    if (ws && now - lastActivity > staleAfterMs) {
      dropConnection(); // the server sends at least 1 message/s: silence means a dead link
    } else if (ws && resyncSince && now - resyncSince > staleAfterMs) {
      dropConnection(); // resync asked for but no snapshot came: start over
    }
    renderClock(now);
    renderConnection(now);
  }

  // ---------- start ----------

  var resizeTimer = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      for (var i = 0; i < tiles.length; i++) fitQueue.push(tiles[i]);
      fitPending();
    }, 200);
  });

  setupTiles();
  renderTiles();
  tick();
  setInterval(tick, TICK_MS);
  connect();
})();
