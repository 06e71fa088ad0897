/* wallboard TV board: keeps a flat key → value map in sync with the server over a WebSocket
   and paints the server-rendered tiles through their types (wb-tiles.js).

   Rules this file keeps:
   - Server strings go into the DOM with textContent only (queue labels may be hostile).
   - Memory stays flat over a day: no per-message DOM nodes or listeners; a tile's DOM is
     touched only when its text or class actually changes.
   - Never silently stale: a lost connection shows a full-screen overlay; a tile whose source
     is down, stale, or silent longer than the board's stale_after_s gets a badge. */
(function () {
  "use strict";
  var WB = window.WB;
  var config = WB.config;
  var I = WB.i18n;
  var t = I.t;
  var staleAfterMs = Math.max(1, Number(config.stale_after_s) || 5) * 1000;
  var dataStaleS = Number(config.data_stale_after_s) || 0;

  var TICK_MS = 250; // one timer drives clock, countdown, watchdog and pixel shift
  var FIRST_CONNECT_GRACE_MS = 1500; // no "lost" overlay flash on a normal page load

  // ---------- state ----------

  // Exposed for tests and for the kiosk operator's console.
  var board = (WB.board = window.wallboard = { state: {}, seq: null, connected: false, alerts: [] });
  var state = board.state;
  // sources.<name>.<field> parsed out of the flat data; bounded by the configured sources.
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
        if (entry.status === undefined && entry.last_event_ts === undefined) sources.delete(name);
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

  /** The board editor saved this board: its new tiles, on the same socket (wb-layout.js). */
  function relayout() {
    tiles.length = 0;
    dataStaleS = Number(config.data_stale_after_s) || 0;
    setupTiles();
    renderTiles(Date.now());
  }

  function setupTiles() {
    var defs = Array.isArray(config.tiles) ? config.tiles : [];
    for (var j = 0; j < defs.length; j++) {
      var def = defs[j];
      var el = grid && grid.querySelector("[data-tile='" + String(def.id).replace(/[^\w-]/g, "") + "']");
      var type = WB.tiles.types[def.type] || WB.tiles.types.number;
      if (!el) continue;
      var win = el.querySelector(".tile__window");
      var caption = I.windowCaption(String(def.window || "live"));
      if (win) win.textContent = caption;
      var tile = {
        def: def, el: el, type: type, bodyEl: el.querySelector(".tile__value"),
        badgeEl: el.querySelector(".tile__stale"), level: "none", staleText: "",
        winEl: win, caption: caption, lag: 0,
        sourcesRaw: undefined, sourcesList: [], fit: 1, dirty: true,
      };
      type.build(tile);
      tiles.push(tile);
    }
  }

  function setLevel(tile, level) {
    if (level === tile.level) return;
    var previous = tile.level;
    tile.level = level;
    tile.el.classList.remove("tile--" + previous);
    tile.el.classList.add("tile--" + level);
    tile.el.setAttribute("data-level", level);
    if (level === "crit") WB.alert(tile, state[tile.def.key]); // on the transition into red only
  }

  /** One source's problem as badge text, or "" when it is fine. */
  function sourceProblem(name, entry, now) {
    if (!entry) return "";
    if (entry.status === "down") return t("ui.source_down", { name: name });
    var last = entry.last_event_ts;
    var age = typeof now === "number" && typeof last === "number" && now >= last ? now - last : null;
    if (entry.status === "stale" || (dataStaleS && age !== null && age > dataStaleS)) {
      return age !== null ? t("ui.no_data", { name: name, age: I.formatDuration(age) }) : t("ui.source_stale", { name: name });
    }
    return "";
  }

  /** Badge text for a tile: problems of the sources feeding it. With no sources_key, or before
      any source fed its queue, every source counts (conservative). */
  function staleText(tile) {
    var now = state["meta.ts"];
    var list = null;
    var key = tile.def.sources_key;
    if (tile.def.type === "clock" || tile.def.type === "announcements") return "";
    if (key) {
      var raw = state[key];
      if (raw !== tile.sourcesRaw) {
        tile.sourcesRaw = raw;
        tile.sourcesList = typeof raw === "string" && raw
          ? raw.split(",").map(function (s) { return s.trim(); }).filter(Boolean) : [];
      }
      if (tile.sourcesList.length) list = tile.sourcesList;
    }
    var first = "";
    var count = 0;
    function check(entry, name) {
      var p = sourceProblem(name, entry, now);
      if (p) {
        if (!count) first = p;
        count++;
      }
    }
    if (list) for (var i = 0; i < list.length; i++) check(sources.get(list[i]), list[i]);
    else sources.forEach(check);
    if (!count) return "";
    return count > 1 ? first + " " + t("ui.more", { n: I.int(count - 1) }) : first;
  }

  /** The longest designed delay (lag_s) of the sources feeding the tile's queue, 0 if none. */
  function lagOf(tile) {
    var lag = 0;
    for (var i = 0; i < tile.sourcesList.length; i++) {
      var entry = sources.get(tile.sourcesList[i]);
      var value = entry ? Number(entry.lag_s) : 0;
      if (value > lag) lag = value;
    }
    return lag;
  }

  /** Note a source's designed delay next to the window ("15 min · ≈1 min behind"). */
  function setLag(tile, lag) {
    if (lag === tile.lag || !tile.winEl) return;
    tile.lag = lag;
    var minutes = I.windowCaption(Math.max(1, Math.round(lag / 60)) + "m");
    tile.winEl.textContent = lag > 0 ? tile.caption + " \u00B7 " + t("ui.lag", { age: minutes })
      : tile.caption;
  }

  function setStale(tile, text) {
    if (text === tile.staleText) return;
    tile.staleText = text;
    tile.el.classList.toggle("tile--stale", !!text);
    tile.badgeEl.textContent = text ? "\u26A0 " + text : "";
    tile.badgeEl.hidden = !text;
  }

  var fitList = []; // reused; never longer than tiles.length

  function renderTiles(now) {
    fitList.length = 0;
    for (var i = 0; i < tiles.length; i++) {
      var tile = tiles[i];
      setLevel(tile, tile.type.paint(tile, state, now));
      setStale(tile, staleText(tile));
      setLag(tile, lagOf(tile));
      if (tile.dirty) {
        tile.dirty = false;
        fitList.push(tile);
      }
    }
    WB.kiosk.fit(fitList);
    renderJournal();
    var site = state["meta.site"];
    if (typeof site === "string" && site) WB.tiles.setText(siteEl, site);
  }

  // ---------- header, overlay ----------

  var siteEl = document.getElementById("wb-site");
  var journalEl = document.getElementById("wb-journal");
  var clockEl = document.getElementById("wb-clock");
  var dotEl = document.getElementById("wb-conn");
  var overlayEl = document.getElementById("wb-overlay");
  var overlayTitleEl = document.getElementById("wb-overlay-title");
  var overlayDetailEl = document.getElementById("wb-overlay-detail");
  var overlayLastEl = document.getElementById("wb-overlay-last");
  var setText = WB.tiles.setText;

  /** "journal down" in the status line while the server cannot store events. */
  function renderJournal() {
    if (!journalEl) return;
    var down = state["meta.journal"] === "down";
    if (journalEl.hidden === down) journalEl.hidden = !down;
    setText(journalEl, down ? "\u26A0 " + t("ui.journal_down") : "");
  }

  WB.skewMs = 0; // server clock minus ours: the TV's clock is often wrong
  var lastDataAt = 0;

  function zone() {
    var z = config.timezone || state["meta.timezone"] || "";
    return typeof z === "string" ? z : "";
  }

  function renderClock(now) {
    setText(clockEl, I.dateFormat(zone(), "hms").format(new Date(now + WB.skewMs)));
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
    setText(overlayTitleEl, revoked ? t("ui.revoked")
      : everConnected || retryAt ? t("ui.lost") : t("ui.connecting"));
    setText(overlayDetailEl, retryAt > now
      ? t("ui.retry_in", { n: I.int(Math.max(1, Math.ceil((retryAt - now) / 1000))) })
      : t("ui.retrying"));
    setText(overlayLastEl, lastDataAt ? t("ui.last_update", { t: I.dateFormat(zone(), "hms").format(new Date(lastDataAt + WB.skewMs)) }) : "");
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
  var revoked = false;
  var pageStart = Date.now();

  function socketUrl() {
    var path = typeof config.ws_path === "string" && config.ws_path.charAt(0) === "/"
      ? config.ws_path : "/ws?board=" + encodeURIComponent(config.board || "");
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
    sock.onerror = sock.onclose = function (ev) {
      if (gen !== generation) return;
      // 4403: the server removed this TV's token; keep retrying (it may come back) but say why.
      if (ev && ev.code === 4403) revoked = true; // until a snapshot comes again
      dropConnection();
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

  /** Exponential back-off with full jitter (wb-sync.js): TVs do not reconnect in step. */
  function scheduleReconnect() {
    clearTimeout(retryTimer);
    var delay = WB.sync.reconnectDelay(attempt);
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
      revoked = false;
      board.connected = true;
    } else if (msg.type === "delta") {
      if (resyncSince || board.seq === null || msg.seq !== board.seq + 1) {
        // Gap (or a delta before any snapshot): unusable; ask for a snapshot once.
        if (!resyncSince) {
          resyncSince = now;
          send({ type: "resync" });
        }
        return;
      }
      applyDelta(msg.changes && typeof msg.changes === "object" ? msg.changes : {},
        Array.isArray(msg.removed) ? msg.removed : null);
      board.seq = msg.seq;
      if (msg.series && !WB.sync.applySeries(state, msg.series)) {
        resyncSince = now; // a list not as the server holds it: start again from a snapshot
        send({ type: "resync" });
      }
    } else {
      return;
    }
    if (WB.kiosk.checkBuild(state["meta.build"])) return;
    WB.layout.check(state, relayout);
    lastDataAt = now;
    var ts = state["meta.ts"];
    if (typeof ts === "number") WB.skewMs = ts * 1000 - now;
    renderTiles(now);
    renderConnection(now);
  }

  /** Clock, overlay countdown, watchdog and pixel shift on a single timer. */
  function tick() {
    var now = Date.now();
    if (ws && now - lastActivity > staleAfterMs) {
      dropConnection(); // the server sends at least 1 message/s: silence means a dead link
    } else if (ws && resyncSince && now - resyncSince > staleAfterMs) {
      dropConnection(); // resync asked for but no snapshot came: start over
    }
    renderClock(now);
    renderConnection(now);
    WB.kiosk.pixelShift(now);
  }

  // ---------- start ----------

  var resizeTimer = 0;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      for (var i = 0; i < tiles.length; i++) tiles[i].dirty = true;
      renderTiles(Date.now());
    }, 200);
  });

  setupTiles();
  renderTiles(Date.now());
  tick();
  setInterval(tick, TICK_MS);
  connect();
})();
