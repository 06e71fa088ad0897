/* wallboard board editor: the lists of boards and playlists, and the playlist form
   (window.WB.editList). A playlist's boards are chosen from the boards that exist (the
   schema's), in order, with the seconds each is shown. Text goes in with textContent only. */
(function () {
  "use strict";
  var WB = window.WB;
  var t = WB.i18n.t;

  var el = WB.el;

  function button(parent, text, onClick, label) {
    var node = el("button", null, parent, text);
    node.type = "button";
    if (label) node.setAttribute("aria-label", label);
    node.addEventListener("click", onClick);
    return node;
  }

  WB.editList = function (boardsUl, playlistsUl, box, hooks) {
    var ed = window.wallboardEditor;

    function fill(ul, kind, items) {
      ul.textContent = "";
      var doc = ed.doc;
      items = items.slice();
      if (doc && doc.kind === kind && doc.version === 0 && !doc.read_only) items.push({ name: doc.name, draft: true });
      items.forEach(function (item) {
        var li = el("li", null, ul);
        var open = doc && doc.kind === kind && doc.name === item.name;
        var node = button(li, (item.read_only ? "\uD83D\uDD12 " : "") + item.name + (item.draft ? " *" : ""), function () {
          if (!item.draft) hooks.open(kind, item.name);
        });
        node.className = "ed-list__item" + (open ? " ed-list__item--open" : "");
        node.setAttribute("data-" + kind, item.name);
        node.title = item.read_only ? t("edit.read_only") : item.title || item.name;
      });
    }

    function render() {
      fill(boardsUl, "board", ed.list);
      fill(playlistsUl, "playlist", ed.playlists);
    }

    function problemsOf(path) {
      var list = hooks.problems(path, true);
      return list.length ? list.join("; ") : "";
    }

    /** The playlist form: seconds per board, then its boards in order (up, down, remove). */
    function renderPlaylist(doc) {
      box.textContent = "";
      var pl = doc.playlist;
      var fs = el("fieldset", "ed-fields", box);
      fs.disabled = !!doc.read_only;
      var prop = ((ed.schema.playlist_schema || {}).properties || {}).interval_s || {};
      var field = el("div", "ed-field", fs);
      var lab = el("label", "ed-field__label", field, t("edit.f_interval"));
      var seconds = el("input", null, field);
      seconds.type = "number";
      seconds.id = lab.htmlFor = "ed-f-interval";
      seconds.setAttribute("data-path", "interval_s");
      if (prop.minimum !== undefined) seconds.min = prop.minimum;
      if (prop.maximum !== undefined) seconds.max = prop.maximum;
      seconds.value = pl.interval_s === undefined ? 30 : pl.interval_s;
      seconds.addEventListener("change", function () { pl.interval_s = seconds.value === "" ? null : Number(seconds.value); });
      var err = problemsOf("interval_s");
      if (err) el("div", "ed-field__error", field, err);
      el("div", "ed-field__label", fs, t("edit.playlist_boards"));
      err = problemsOf("boards");
      if (err) el("div", "ed-field__error", fs, err);
      var ol = el("ol", "ed-playlist__boards", fs);
      pl.boards.forEach(function (name, i) {
        var li = el("li", null, ol);
        li.setAttribute("data-board", name);
        el("span", "ed-playlist__name", li, name);
        button(li, "\u2191", function () { move(i, -1); }, t("edit.up"));
        button(li, "\u2193", function () { move(i, 1); }, t("edit.down"));
        button(li, "\u2715", function () { pl.boards.splice(i, 1); hooks.changed(); }, t("edit.remove"));
        var e = problemsOf("boards[" + i + "]");
        if (e) el("div", "ed-field__error", li, e);
      });
      var add = el("div", "ed-playlist__add", fs);
      var pick = el("select", null, add);
      pick.id = "ed-add-board";
      pick.setAttribute("aria-label", t("edit.add_board"));
      (ed.schema.boards || []).forEach(function (name) { el("option", null, pick, name).value = name; });
      button(add, t("edit.add_board"), function () {
        if (pick.value) pl.boards.push(pick.value);
        hooks.changed();
      }).id = "ed-add-board-button";

      function move(i, step) {
        var j = i + step;
        if (j < 0 || j >= pl.boards.length) return;
        pl.boards.splice(j, 0, pl.boards.splice(i, 1)[0]);
        hooks.changed();
      }
    }

    return { render: render, renderPlaylist: renderPlaylist };
  };
})();
