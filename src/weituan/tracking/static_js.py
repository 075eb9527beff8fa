"""The browser beacon served at /collect.js: a page view per page (and per history change), via sendBeacon.

It sends nothing when the browser says Do-Not-Track or Global Privacy Control.
"""

COLLECT_JS = """(function () {
  var n = navigator, w = window, d = document;
  if (n.doNotTrack === "1" || w.doNotTrack === "1" || n.msDoNotTrack === "1" || n.globalPrivacyControl === true) {
    w.wtTrack = function () {};
    return;
  }
  var script = d.currentScript;
  var endpoint = (script && script.getAttribute("data-endpoint")) || "/collect";
  function send(event, props) {
    var body = JSON.stringify({event: event || "pageview", url: location.href, referrer: d.referrer, props: props || {}});
    if (n.sendBeacon && n.sendBeacon(endpoint, new Blob([body], {type: "text/plain"}))) return;
    var x = new XMLHttpRequest();
    x.open("POST", endpoint, true);
    x.setRequestHeader("Content-Type", "text/plain");
    x.send(body);
  }
  w.wtTrack = send;
  send("pageview");
  var push = history.pushState;
  if (push) {
    history.pushState = function () { push.apply(this, arguments); send("pageview"); };
    w.addEventListener("popstate", function () { send("pageview"); });
  }
})();
"""
