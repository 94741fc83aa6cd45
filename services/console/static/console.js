// Lanesight attendant console: live updates over server-sent events.
// The server sends the same HTML fragments the page is made of; this swaps them in by id.
// EventSource reconnects by itself and sends Last-Event-ID, so the server replays exactly
// what was missed (or a fresh snapshot), and nothing is shown twice.
"use strict";
(function () {
  var live = document.getElementById("live");
  var queue = document.getElementById("queue");
  var tiles = document.getElementById("tiles");
  if (!live || !queue || !tiles) { return; }
  var audio = null;

  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  function rankOf(element) {
    return (element.getAttribute("data-rank") || "0.0.0").split(".").map(Number);
  }

  function before(a, b) {  // true when a sorts before b (more urgent or newer)
    var x = rankOf(a), y = rankOf(b);
    for (var i = 0; i < x.length; i++) { if (x[i] !== y[i]) { return x[i] > y[i]; } }
    return false;
  }

  function place(element) {
    var children = queue.children;
    for (var i = 0; i < children.length; i++) {
      if (children[i] !== element && before(element, children[i])) {
        queue.insertBefore(element, children[i]);
        return;
      }
    }
    queue.appendChild(element);
  }

  function alarm() {
    if (navigator.vibrate) { navigator.vibrate([200, 100, 200]); }
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var tone = audio.createOscillator(), gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, audio.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.6);
      tone.connect(gain).connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.6);
    } catch (e) { /* no sound available */ }
    document.body.setAttribute("data-alarm", String(Date.now()));
  }

  function ages() {
    var now = Date.now();
    document.querySelectorAll(".age[data-since]").forEach(function (span) {
      var since = Number(span.getAttribute("data-since"));
      if (!since) { return; }
      var s = Math.max(0, Math.round((now - since) / 1000));
      span.textContent = s < 60 ? s + " s ago"
        : s < 3600 ? Math.floor(s / 60) + " min ago" : Math.floor(s / 3600) + " h ago";
    });
    document.body.classList.toggle("no-alerts", queue.children.length === 0);
  }

  function apply(change) {
    var existing = document.getElementById(change.id);
    if (change.kind === "lane") {
      var tile = fragment(change.html);
      if (existing) { existing.replaceWith(tile); } else { tiles.appendChild(tile); }
      return;
    }
    if (change.remove) { if (existing) { existing.remove(); } return; }
    var row = fragment(change.html);
    if (existing) { existing.replaceWith(row); } else if (change.attention) { alarm(); }
    place(row);
  }

  // "Live" needs both: this page's stream, and the console's link to the lanes (fusion).
  var streamUp = false;
  var lanesUp = live.classList.contains("on");
  function showLive() {
    var up = streamUp && lanesUp;
    live.textContent = up ? "Live" : (streamUp ? "Lanes unreachable, retrying…" : "Reconnecting…");
    live.className = "live " + (up ? "on" : "off");
  }
  var since = live.getAttribute("data-cursor");
  var source = new EventSource("/events?since=" + encodeURIComponent(since));
  source.addEventListener("open", function () { streamUp = true; showLive(); });
  source.addEventListener("error", function () { streamUp = false; showLive(); });
  source.addEventListener("snapshot", function (event) {
    var data = JSON.parse(event.data);
    var known = {};
    queue.querySelectorAll("li.alert").forEach(function (li) { known[li.id] = true; });
    tiles.innerHTML = data.tiles;
    queue.innerHTML = data.queue;
    lanesUp = data.connected; showLive();
    queue.querySelectorAll("li.alert[data-attention='1']").forEach(function (li) {
      if (!known[li.id]) { alarm(); }
    });
    ages();
  });
  source.addEventListener("change", function (event) {
    var change = JSON.parse(event.data);
    if (change.kind === "status") { lanesUp = change.connected; showLive(); return; }
    apply(change);
    ages();
  });
  source.addEventListener("signedout", function () {
    source.close();
    window.location.assign("/signin");
  });
  ages();
  setInterval(ages, 5000);
})();
