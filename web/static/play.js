/* wallboard playlist (/play/NAME): shows the boards' frames in turn every interval_s. Each frame
   is a full board page with its own live connection, so a board is current when it appears. */
(function () {
  "use strict";
  var config = {};
  try {
    config = JSON.parse(document.getElementById("play-config").textContent) || {};
  } catch (err) {
    config = {};
  }
  var frames = document.querySelectorAll(".play__frame");
  var intervalMs = Math.max(1, Number(config.interval_s) || 30) * 1000;
  var play = (window.wallboardPlay = { index: 0, shown: frames.length ? frames[0].getAttribute("data-board") : null, rotations: 0 });

  function show(index) {
    for (var i = 0; i < frames.length; i++) {
      var hide = i !== index;
      if (frames[i].hidden !== hide) frames[i].hidden = hide;
    }
    play.index = index;
    play.shown = frames[index].getAttribute("data-board");
  }

  if (frames.length > 1) {
    setInterval(function () {
      play.rotations++;
      show((play.index + 1) % frames.length);
    }, intervalMs);
  }
})();
