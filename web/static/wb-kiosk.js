/* wallboard: kiosk care (window.WB.kiosk): slow pixel shift against burn-in, reload when the
   server runs a new build, and fitting text that is still too big for its box. */
(function () {
  "use strict";
  var WB = window.WB;
  var SHIFT_EVERY_MS = 60000;
  // A slow walk around a small square: every pixel of a static edge moves within a few minutes.
  var PATH = [[0, 0], [1, 0], [1, 1], [0, 1], [-1, 1], [-1, 0], [-1, -1], [0, -1], [1, -1]];
  var step = 0;
  var shiftAt = 0;

  function pixelShift(now) {
    var px = Number(WB.config.pixel_shift_px) || 0;
    if (!px || now < shiftAt) return;
    shiftAt = now + SHIFT_EVERY_MS;
    step = (step + 1) % PATH.length;
    var body = document.body;
    body.style.setProperty("--shift-max", px + "px");
    body.style.setProperty("--shift-x", PATH[step][0] * px + "px");
    body.style.setProperty("--shift-y", PATH[step][1] * px + "px");
  }

  var RELOAD_GUARD_MS = 30000;
  /** The server's build differs from the page's: reload (at most every 30 s, should a proxy
      serve a cached page). */
  function checkBuild(serverBuild) {
    var mine = WB.config.build;
    if (typeof serverBuild !== "string" || !mine || serverBuild === mine) return false;
    var last = 0;
    try {
      last = Number(sessionStorage.getItem("wallboard-reload")) || 0;
    } catch (err) { /* storage off: the guard is best effort */ }
    if (Date.now() - last < RELOAD_GUARD_MS) return false;
    // Stamped only when reloading: a blocked attempt must not push the next one back.
    try {
      sessionStorage.setItem("wallboard-reload", String(Date.now()));
    } catch (err) { /* as above */ }
    location.reload();
    return true;
  }

  /** Shrink boxes whose content is still wider or taller than the box (odd fonts, long text).
      Writes, then reads, then writes: one forced layout per pass, not one per tile. */
  function fit(list) {
    var i;
    if (!list.length) return;
    for (i = 0; i < list.length; i++) list[i].bodyEl.style.setProperty("--fit", "1");
    for (i = 0; i < list.length; i++) {
      var box = list[i].bodyEl;
      var w = box.clientWidth;
      var h = box.clientHeight;
      var ratio = 1;
      if (w > 0 && box.scrollWidth > w) ratio = Math.min(ratio, w / box.scrollWidth);
      if (h > 0 && box.scrollHeight > h) ratio = Math.min(ratio, h / box.scrollHeight);
      list[i].fit = ratio < 1 ? Math.max(0.15, ratio * 0.97) : 1;
    }
    for (i = 0; i < list.length; i++) {
      if (list[i].fit !== 1) list[i].bodyEl.style.setProperty("--fit", String(list[i].fit));
    }
  }

  WB.kiosk = { pixelShift: pixelShift, checkBuild: checkBuild, fit: fit };
})();
