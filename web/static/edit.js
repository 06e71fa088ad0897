/* wallboard board editor (/edit): the token (typed once, kept in this tab's sessionStorage,
   sent in the Authorization header, never in a URL), the board list, the edited board, saving
   with the CSRF token and the version it was read at, versions and rollback. */
(function () {
  "use strict";
  var WB = window.WB;
  var t = WB.i18n.t;
  var TOKEN_KEY = "wallboard-editor-token";
  var VALUES_MS = 2000; // the threshold preview's numbers

  var $ = function (id) { return document.getElementById(id); };
  var ed = (window.wallboardEditor = {
    token: "", csrf: "", schema: null, list: [], playlists: [], doc: null, selected: -1, problems: [],
  });
  var values = {};
  var painter = null;

  function storage(value) {
    try {
      if (value === undefined) return sessionStorage.getItem(TOKEN_KEY) || "";
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (err) { /* storage off: the token lives in memory only */ }
    return "";
  }

  function api(method, path, body) {
    var headers = { Authorization: "Bearer " + ed.token };
    if (method !== "GET") headers["X-CSRF-Token"] = ed.csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(path, { method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) }).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = JSON.parse(text); } catch (err) { data = { error: text }; }
        return { status: resp.status, ok: resp.ok, data: data };
      });
    });
  }

  function status(text, bad) {
    var node = $("ed-status");
    node.textContent = text;
    node.classList.toggle("ed-status--bad", !!bad);
  }

  // ---------- login ----------

  function login(token) {
    ed.token = token;
    return api("GET", "/api/editor/session").then(function (r) {
      if (!r.ok) {
        storage(null);
        $("ed-login").hidden = false;
        $("ed-main").hidden = true;
        $("ed-login-error").textContent = token ? t("edit.bad_token") : "";
        return;
      }
      storage(token);
      ed.csrf = r.data.csrf;
      $("ed-who").textContent = r.data.who;
      $("ed-login").hidden = true;
      $("ed-main").hidden = false;
      $("ed-logout").hidden = false;
      return api("GET", "/api/editor/schema").then(function (s) {
        ed.schema = s.data;
        inspector.setSchema(s.data);
        grid.setPalette(s.data.tile_types, typeName);
        return loadList();
      });
    });
  }

  $("ed-login").addEventListener("submit", function (ev) {
    ev.preventDefault();
    login($("ed-token").value.trim());
  });
  $("ed-logout").addEventListener("click", function () {
    storage(null);
    location.reload();
  });
  $("ed-lang").addEventListener("change", function () {
    location.search = "?lang=" + encodeURIComponent($("ed-lang").value);
  });

  // ---------- the lists (edit-list.js draws them) ----------

  /** A board's or a playlist's API path. */
  function base(doc) {
    return "/api/editor/" + (doc.kind === "playlist" ? "playlists/" : "boards/") + encodeURIComponent(doc.name);
  }

  function loadList(open, kind) {
    return Promise.all([api("GET", "/api/editor/boards"), api("GET", "/api/editor/playlists"),
      api("GET", "/api/editor/schema")]).then(function (rs) {
      ed.list = rs[0].ok ? rs[0].data.boards : [];
      ed.playlists = rs[1].ok ? rs[1].data.playlists : [];
      if (rs[2].ok) ed.schema.boards = rs[2].data.boards; // what a playlist may show now
      lists.render();
      kind = kind || (ed.doc && ed.doc.kind) || "board";
      var name = open || (ed.doc && ed.doc.name);
      var items = kind === "playlist" ? ed.playlists : ed.list;
      if (name && items.some(function (b) { return b.name === name; })) return openDoc(kind, name);
      if (!ed.doc && ed.list.length) return openDoc("board", ed.list[0].name);
    });
  }

  function openDoc(kind, name) {
    return api("GET", base({ kind: kind, name: name })).then(function (r) {
      if (!r.ok) return status(t("edit.error", { text: r.data.error }), true);
      r.data.kind = kind;
      setDoc(r.data);
    });
  }

  function setDoc(doc) {
    ed.doc = doc;
    ed.selected = doc.board && doc.board.tiles.length ? 0 : -1;
    ed.problems = [];
    $("ed-diff").hidden = true;
    status("");
    render();
    lists.render();
  }

  function askName(initial) {
    var name = window.prompt(t("edit.ask_name"), initial || "");
    return name ? name.trim() : "";
  }

  $("ed-new").addEventListener("click", function () {
    var name = askName("");
    if (name) setDoc({ kind: "board", name: name, version: 0, read_only: false, versions: [], board: { title: name, columns: 4, tiles: [] } });
  });

  $("ed-new-playlist").addEventListener("click", function () {
    var name = askName("");
    if (name) setDoc({ kind: "playlist", name: name, version: 0, read_only: false, versions: [], playlist: { boards: [], interval_s: 30 } });
  });

  $("ed-duplicate").addEventListener("click", function () {
    if (!ed.doc) return;
    var to = askName(ed.doc.name + "-copy");
    if (!to) return;
    api("POST", base(ed.doc) + "/duplicate", { to: to }).then(function (r) {
      return r.ok ? loadList(to) : showError(r);
    });
  });

  $("ed-rename").addEventListener("click", function () {
    if (!ed.doc || ed.doc.read_only || !ed.doc.version) return;
    var to = askName(ed.doc.name);
    if (!to || to === ed.doc.name) return;
    api("POST", base(ed.doc) + "/rename", { to: to, version: ed.doc.version }).then(function (r) {
      return r.ok ? loadList(to) : showError(r);
    });
  });

  $("ed-delete").addEventListener("click", function () {
    if (!ed.doc || ed.doc.read_only) return;
    if (!window.confirm(t("edit.confirm_delete", { name: ed.doc.name }))) return;
    if (!ed.doc.version) { ed.doc = null; render(); return loadList(); }
    api("DELETE", base(ed.doc) + "?version=" + ed.doc.version).then(function (r) {
      if (!r.ok) return showError(r);
      ed.doc = null;
      render();
      return loadList();
    });
  });

  // ---------- saving ----------

  function clean(value) {
    if (Array.isArray(value)) return value.map(clean);
    if (!value || typeof value !== "object") return value;
    var out = {};
    for (var k in value) {
      var v = value[k];
      if (v === null || v === "" || v === undefined) continue;
      out[k] = clean(v);
    }
    return out;
  }

  function showError(r) {
    ed.problems = (r.data && r.data.problems) || [];
    if (r.status === 409 && r.data.current_version !== undefined) {
      ed.doc.version = r.data.current_version; // saving again overwrites, knowingly
      $("ed-diff").textContent = r.data.diff || "";
      $("ed-diff").hidden = !r.data.diff;
      status(t("edit.conflict", { v: r.data.current_version }), true);
    } else if (r.status === 422) {
      status(t("edit.invalid"), true);
    } else {
      status(t("edit.error", { text: (r.data && r.data.error) || r.status }), true);
    }
    render();
  }

  $("ed-save").addEventListener("click", function () {
    var doc = ed.doc;
    if (!doc || doc.read_only) return;
    status(t("edit.saving"));
    var body = { version: doc.version };
    body[doc.kind] = clean(doc[doc.kind]);
    api("PUT", base(doc), body).then(function (r) {
      if (!r.ok) return showError(r);
      ed.problems = [];
      $("ed-diff").hidden = true;
      return loadList(doc.name).then(function () { status(t("edit.saved", { v: r.data.version })); });
    });
  });

  $("ed-rollback").addEventListener("click", function () {
    var doc = ed.doc;
    var to = Number($("ed-versions").value);
    if (!doc || doc.read_only || !to) return;
    api("POST", base(doc) + "/rollback", { to: to, version: doc.version }).then(function (r) {
      if (!r.ok) return showError(r);
      return openDoc(doc.kind, doc.name).then(function () { status(t("edit.rolled_back", { v: to })); });
    });
  });

  // ---------- the board being edited ----------

  function typeName(type) {
    var key = "type." + type;
    var text = t(key);
    if (text !== key) return text;
    key = "edit.type_" + type; // number, ring, sparkline, survey: named by their KPI on a TV
    text = t(key);
    return text === key ? type : text;
  }

  function windowName(win) {
    var text = t("window." + win);
    return text === "window." + win ? win : text;
  }

  function describe(tile) {
    var type = tile.type || "number";
    var kpi = tile.kpi || (ed.schema && ed.schema.type_kpi[type]);
    var title = tile.label || (kpi && type !== "queue_table" ? t("kpi." + kpi) : typeName(type));
    var scope = tile.queue || tile.channel || t("edit.site_wide");
    var sub = [typeName(type), type === "clock" || type === "announcements" ? "" : scope, tile.window ? windowName(tile.window) : ""]
      .filter(Boolean).join(" · ");
    var th = tile.thresholds;
    var level = th && (typeof th.warn === "number" || typeof th.crit === "number") ? WB.levelOf(th, valueOf(tile)) : "";
    return { title: title, sub: sub, level: level,
      thresholds: th ? "\u25B2 " + (th.warn === undefined || th.warn === null ? "–" : th.warn) + " / " + (th.crit === undefined || th.crit === null ? "–" : th.crit) : "" };
  }

  function problemsAt(path, exact) {
    return ed.problems.filter(function (p) {
      return exact ? p.path === path : p.path === path || p.path.indexOf(path + ".") === 0;
    }).map(function (p) { return p.message; });
  }

  function valueOf(tile) {
    var kpi = tile.kpi || (ed.schema && ed.schema.type_kpi[tile.type || "number"]);
    if (!kpi) return null;
    var node = tile.queue ? (values.queues || {})[tile.queue] : tile.channel ? (values.channels || {})[tile.channel] : values.total;
    var win = tile.window || (ed.schema.live_kpis.indexOf(kpi) >= 0 ? "live" : ed.schema.windows.indexOf("today") >= 0 ? "today" : ed.schema.windows[0]);
    node = node && node[win];
    var value = node ? node[kpi] : null;
    return typeof value === "number" ? value : null;
  }

  function render() {
    var doc = ed.doc;
    $("ed-name").textContent = doc ? doc.name : "";
    $("ed-version").textContent = doc ? (doc.version ? t("edit.version", { v: doc.version }) : t("edit.unsaved")) : "";
    $("ed-lock").hidden = !(doc && doc.read_only);
    ["ed-save", "ed-rollback", "ed-rename", "ed-delete"].forEach(function (id) { $(id).disabled = !doc || doc.read_only; });
    $("ed-duplicate").disabled = !doc || !doc.version && !doc.read_only;
    var versions = $("ed-versions");
    versions.textContent = "";
    ((doc && doc.versions) || []).forEach(function (v) {
      var opt = document.createElement("option");
      opt.value = String(v.version);
      opt.textContent = v.version + " · " + v.saved_by + " · " + v.saved_at;
      versions.appendChild(opt);
    });
    var list = $("ed-problems");
    list.textContent = "";
    ed.problems.forEach(function (p) {
      var line = document.createElement("div");
      line.textContent = (p.path ? p.path + ": " : "") + p.message;
      list.appendChild(line);
    });
    list.hidden = !ed.problems.length;
    var playlist = !!(doc && doc.kind === "playlist");
    ["ed-palette", "ed-grid", "ed-help", "ed-inspector"].forEach(function (id) { $(id).hidden = playlist; });
    $("ed-playlist").hidden = !playlist;
    painter = null;
    if (playlist) {
      lists.renderPlaylist(doc);
      return;
    }
    grid.render(doc, ed.selected);
    inspector.renderBoard(doc);
    inspector.renderTile(doc, ed.selected);
  }

  function defaultsFor(tile) {
    return WB.tileDefaults(tile, ed.schema);
  }

  var grid = WB.editGrid($("ed-grid"), $("ed-palette"), {
    describe: describe,
    problems: function (i) { return problemsAt("tiles[" + i + "]", false).length > 0; },
    select: function (i) { ed.selected = i; render(); },
    insert: function (type, index) {
      if (!ed.doc || ed.doc.read_only || ed.doc.board.tiles.length >= ed.schema.max_tiles) return;
      ed.doc.board.tiles.splice(index, 0, defaultsFor({ type: type }));
      ed.selected = index;
      render();
    },
    move: function (from, to) {
      var tiles = ed.doc.board.tiles;
      if (from === to || to < 0 || to >= tiles.length) return;
      tiles.splice(to, 0, tiles.splice(from, 1)[0]);
      ed.selected = to;
      render();
    },
    resize: function (i, cols, rows) {
      var tile = ed.doc.board.tiles[i];
      if (tile.cols === cols && tile.rows === rows) return;
      tile.cols = cols;
      tile.rows = rows;
      ed.selected = i;
      render();
    },
    remove: function (i) {
      ed.doc.board.tiles.splice(i, 1);
      ed.selected = Math.min(i, ed.doc.board.tiles.length - 1);
      render();
    },
  });

  var inspector = WB.editInspector($("ed-board-fields"), $("ed-tile-fields"), {
    problems: problemsAt,
    value: valueOf,
    onValues: function (paint) { painter = paint; },
    setBoard: function (path, value) {
      var parts = path.split(".");
      var node = ed.doc.board;
      if (parts.length > 1) node = node[parts[0]] = node[parts[0]] || {};
      node[parts[parts.length - 1]] = value;
      grid.render(ed.doc, ed.selected);
    },
    setTile: function (i, path, value, quiet) {
      var tile = ed.doc.board.tiles[i];
      var parts = path.split(".");
      if (parts.length > 1) (tile[parts[0]] = tile[parts[0]] || {})[parts[1]] = value;
      else tile[path] = value;
      if (path === "queue" && value) delete tile.channel;
      if (path === "channel" && value) delete tile.queue;
      if (path === "type" || path === "kpi") defaultsFor(tile);
      if (quiet) grid.render(ed.doc, ed.selected);
      else render();
    },
  });

  var lists = WB.editList($("ed-boards"), $("ed-playlists"), $("ed-playlist"), {
    open: openDoc,
    problems: problemsAt,
    changed: function () { render(); },
  });

  function pollValues() {
    if (!ed.token || document.hidden || !ed.doc || ed.doc.kind === "playlist") return;
    api("GET", "/api/editor/values").then(function (r) {
      if (!r.ok) return;
      values = r.data || {};
      if (painter) painter();
    });
  }
  setInterval(pollValues, VALUES_MS);

  var saved = storage();
  if (saved) login(saved).then(pollValues);
  else $("ed-login").hidden = false;
})();
