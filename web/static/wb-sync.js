/* wallboard: the pure parts of keeping in sync with the server, shared by the board and tests.
   - applySeries: a delta's `series` ops ([drop, cut, tail] per key: the points of a list that
     changed) applied to the flat state, each as a new array (tiles see a new reference).
   - reconnectDelay: exponential back-off with full jitter, so that a room of TVs losing the
     server together (a restart, a switch reboot) spreads its retries instead of arriving in
     step: uniform in [0, min(cap, start · 2^attempt)). */
(function () {
  "use strict";
  var WB = (window.WB = window.WB || {});
  var BACKOFF_START_MS = 500;
  var BACKOFF_CAP_MS = 30000;

  /** Apply ops to `state`; false if one does not fit the list held (ask for a snapshot). */
  function applySeries(state, ops) {
    for (var key in ops) {
      if (key === "__proto__") continue;
      var op = ops[key];
      var old = state[key];
      if (!Array.isArray(op) || !Array.isArray(old) || !Array.isArray(op[2])) return false;
      var drop = op[0];
      var cut = op[1];
      if (!(drop >= 0 && cut >= 0 && drop + cut <= old.length)) return false;
      state[key] = old.slice(drop, old.length - cut).concat(op[2]);
    }
    return true;
  }

  /** Milliseconds before reconnect attempt `attempt` (0: the first after a drop). */
  function reconnectDelay(attempt, random) {
    var ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * Math.pow(2, Math.min(attempt, 16)));
    return (random || Math.random)() * ceiling;
  }

  WB.sync = { applySeries: applySeries, reconnectDelay: reconnectDelay };
})();
