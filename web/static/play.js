/* wallboard playlist (/play/NAME): shows the boards' frames in turn every interval_s. Each frame
   is a full board page with its own live connection, so a board is current when it appears.
   Once a second the page asks for its playlist's settings (config_path): after the board
   editor saved the playlist it adds, removes and reorders frames in place, without a reload;
   a board it still shows keeps its frame and its connection. */
(function () {
  "use strict";
  var config = {};
  try {
    config = JSON.parse(document.getElementById("play-config").textContent) || {};
  } catch (err) {
    config = {};
  }
  var FOLLOW_MS = 1000;
  var frames = Array.prototype.slice.call(document.querySelectorAll(".play__frame"));
  var play = (window.wallboardPlay = { index: 0, shown: frames.length ? frames[0].getAttribute("data-board") : null, rotations: 0, revision: config.revision || 0 });
  var timer = 0;

  function show(index) {
    for (var i = 0; i < frames.length; i++) {
      var hide = i !== index;
      if (frames[i].hidden !== hide) frames[i].hidden = hide;
    }
    play.index = index;
    play.shown = frames.length ? frames[index].getAttribute("data-board") : null;
  }

  function rotate() {
    clearInterval(timer);
    var intervalMs = Math.max(1, Number(config.interval_s) || 30) * 1000;
    if (frames.length > 1) {
      timer = setInterval(function () {
        play.rotations++;
        show((play.index + 1) % frames.length);
      }, intervalMs);
    }
  }

  /** The frames of `next` in its order: kept where the board stays, new ones added. */
  function apply(next) {
    var wanted = Array.isArray(next.frames) ? next.frames : [];
    var old = frames;
    var shown = play.shown;
    frames = [];
    for (var i = 0; i < wanted.length; i++) {
      var frame = null;
      for (var j = 0; j < old.length; j++) {
        if (old[j] && old[j].getAttribute("data-board") === wanted[i].board) {
          frame = old[j];
          old[j] = null;
          break;
        }
      }
      if (!frame) {
        frame = document.createElement("iframe");
        frame.className = "play__frame";
        frame.setAttribute("data-board", String(wanted[i].board));
        frame.title = String(wanted[i].board);
        frame.src = String(wanted[i].src);
        frame.hidden = true;
        document.body.appendChild(frame);
      }
      // Only the rotation follows the new order: moving an iframe in the DOM reloads it.
      frames.push(frame);
    }
    for (var k = 0; k < old.length; k++) if (old[k]) old[k].remove();
    config.interval_s = next.interval_s;
    config.revision = play.revision = next.revision;
    var at = 0;
    for (var n = 0; n < frames.length; n++) if (frames[n].getAttribute("data-board") === shown) at = n;
    show(at);
    rotate();
  }

  function follow() {
    if (typeof config.config_path !== "string" || config.config_path.charAt(0) !== "/") return;
    fetch(config.config_path, { cache: "no-store", credentials: "same-origin" }).then(function (resp) {
      return resp.ok ? resp.json() : null;
    }).then(function (next) {
      if (next && typeof next === "object" && next.revision !== play.revision) apply(next);
    }, function () { /* the server is away: asked again in a second */ });
  }

  rotate();
  setInterval(follow, FOLLOW_MS);
})();
