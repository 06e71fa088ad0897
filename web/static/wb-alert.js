/* wallboard: what happens when a tile turns red (window.WB.alert).
   Always: a "wallboard:alert" event on window (a hook for tests and kiosk scripts) and an entry
   in wallboard.alerts. Then, unless the board is muted or in quiet hours: a chime generated
   with Web Audio, or the tile's label spoken (speechSynthesis). No audio files. */
(function () {
  "use strict";
  var WB = window.WB;
  var cfg = (WB.config && WB.config.alert) || {};
  var MAX_KEPT = 20; // wallboard.alerts keeps the latest few: memory stays flat
  var audio = null; // one AudioContext for the page's life

  function minutes(hhmm) {
    var parts = hhmm.split(":");
    return Number(parts[0]) * 60 + Number(parts[1]);
  }

  var hmFormat = null;
  /** Whether the site's clock is inside quiet_hours ("22:00-07:00" wraps midnight). */
  function inQuietHours(now) {
    if (!cfg.quiet_hours) return false;
    if (!hmFormat) {
      var opts = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
      if (WB.config.timezone) opts.timeZone = WB.config.timezone;
      try {
        hmFormat = new Intl.DateTimeFormat("en-GB", opts);
      } catch (err) {
        hmFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
      }
    }
    var range = cfg.quiet_hours.split("-");
    var start = minutes(range[0]);
    var end = minutes(range[1]);
    var at = minutes(hmFormat.format(new Date(now + (WB.skewMs || 0))));
    return start <= end ? at >= start && at < end : at >= start || at < end;
  }

  /** Two soft sine tones, generated: nothing to download, nothing to cache. */
  function chime() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return "unsupported";
    if (!audio) audio = new Ctx();
    if (audio.state === "suspended" && audio.resume) audio.resume().catch(function () {});
    var start = audio.currentTime + 0.02;
    var notes = [880, 660];
    for (var i = 0; i < notes.length; i++) {
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      var at = start + i * 0.35;
      osc.type = "sine";
      osc.frequency.value = notes[i];
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.4, at + 0.03);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.6);
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.65);
      osc.onended = disconnect(osc, gain);
    }
    return audio.state; // "suspended" until the kiosk allows autoplay (see docs/boards.md)
  }

  function disconnect(osc, gain) {
    return function () {
      osc.disconnect();
      gain.disconnect();
    };
  }

  function speak(label) {
    if (!window.speechSynthesis || !window.SpeechSynthesisUtterance) return "unsupported";
    var u = new SpeechSynthesisUtterance(WB.i18n.t("ui.alert_speech", { label: label }).replace(/[\u2068\u2069]/g, ""));
    u.lang = WB.i18n.locale;
    window.speechSynthesis.speak(u);
    return "spoken";
  }

  /** A tile went red: report it, and sound it unless muted or quiet. */
  WB.alert = function (tile, value) {
    var now = Date.now();
    var sound = cfg.sound || "chime";
    var outcome;
    if (cfg.mute || sound === "none") outcome = "muted";
    else if (inQuietHours(now)) outcome = "quiet";
    else {
      try {
        outcome = sound === "speech" ? speak(tile.def.label) : chime();
      } catch (err) {
        outcome = "failed";
      }
    }
    var detail = { tile: tile.def.id, level: "crit", label: tile.def.label, value: value, sound: sound, outcome: outcome, at: now };
    var kept = WB.board.alerts;
    kept.push(detail);
    if (kept.length > MAX_KEPT) kept.splice(0, kept.length - MAX_KEPT);
    window.dispatchEvent(new CustomEvent("wallboard:alert", { detail: detail }));
  };
})();
