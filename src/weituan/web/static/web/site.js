/* Weituan pages: the live weighted-length counter of post boxes, resetting a compose box once it posts,
   telling a failed tap, and ticking countdowns.
   The counter mirrors weituan.core.text.weighted_length (CJK and full-width count 2, a URL 23); the
   server counts again and has the last word. */
(function () {
  "use strict";

  var URL_RE = /https?:\/\/[^\s<>"'，。！？、；：（）【】《》]+/gi;
  var URL_WEIGHT = 23;

  // Code point ranges Unicode marks East Asian Wide or Fullwidth (the ones that matter for posts).
  var WIDE = [
    [0x1100, 0x115f], [0x231a, 0x231b], [0x2329, 0x232a], [0x23e9, 0x23ec], [0x23f0, 0x23f0], [0x23f3, 0x23f3],
    [0x25fd, 0x25fe], [0x2614, 0x2615], [0x2648, 0x2653], [0x267f, 0x267f], [0x2693, 0x2693], [0x26a1, 0x26a1],
    [0x26aa, 0x26ab], [0x26bd, 0x26be], [0x26c4, 0x26c5], [0x26ce, 0x26ce], [0x26d4, 0x26d4], [0x26ea, 0x26ea],
    [0x26f2, 0x26f3], [0x26f5, 0x26f5], [0x26fa, 0x26fa], [0x26fd, 0x26fd], [0x2705, 0x2705], [0x270a, 0x270b],
    [0x2728, 0x2728], [0x274c, 0x274c], [0x274e, 0x274e], [0x2753, 0x2755], [0x2757, 0x2757], [0x2795, 0x2797],
    [0x27b0, 0x27b0], [0x27bf, 0x27bf], [0x2b1b, 0x2b1c], [0x2b50, 0x2b50], [0x2b55, 0x2b55],
    [0x2e80, 0x303e], [0x3041, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa000, 0xa4cf], [0xa960, 0xa97f],
    [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xfe10, 0xfe19], [0xfe30, 0xfe6f], [0xff01, 0xff60], [0xffe0, 0xffe6],
    [0x16fe0, 0x18cff], [0x1b000, 0x1b2ff], [0x1f004, 0x1f004], [0x1f0cf, 0x1f0cf], [0x1f18e, 0x1f18e],
    [0x1f191, 0x1f19a], [0x1f200, 0x1f251], [0x1f300, 0x1f64f], [0x1f680, 0x1f6ff], [0x1f7e0, 0x1f7f0],
    [0x1f90c, 0x1f9ff], [0x1fa70, 0x1faff], [0x20000, 0x3fffd]
  ];

  function charWeight(cp) {
    if (cp === 0x200d || cp === 0xfe0f) return 0;
    for (var i = 0; i < WIDE.length; i++) {
      if (cp < WIDE[i][0]) return 1;
      if (cp <= WIDE[i][1]) return 2;
    }
    return 1;
  }

  function plainWeight(text) {
    var total = 0;
    for (var ch of text) total += charWeight(ch.codePointAt(0));
    return total;
  }

  function weightedLength(text) {
    var total = 0, position = 0, match;
    URL_RE.lastIndex = 0;
    while ((match = URL_RE.exec(text)) !== null) {
      total += plainWeight(text.slice(position, match.index)) + URL_WEIGHT;
      position = match.index + match[0].length;
    }
    return total + plainWeight(text.slice(position));
  }

  function refresh(box) {
    var limit = parseInt(box.getAttribute("data-max-length"), 10);
    var form = box.form;
    var counter = form && form.querySelector("[data-counter]");
    if (!counter || !limit) return;
    var used = weightedLength(box.value);
    counter.textContent = used + " / " + limit;
    counter.classList.toggle("over", used > limit);
    var submit = form.querySelector("button[type=submit]");
    if (submit && box.hasAttribute("data-required")) submit.disabled = used > limit || box.value.trim() === "";
    else if (submit) submit.disabled = used > limit;
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target && target.matches && target.matches("textarea[data-max-length]")) refresh(target);
  });

  function refreshAll(root) {
    var boxes = (root || document).querySelectorAll("textarea[data-max-length]");
    for (var i = 0; i < boxes.length; i++) refresh(boxes[i]);
  }

  document.addEventListener("DOMContentLoaded", function () { refreshAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) { refreshAll(event.target); });

  // A compose or comment box that posted successfully is emptied for the next one. A refusal (too long,
  // a bad image, rate limited) keeps the draft: the page swaps 4xx answers into the flash area, which
  // htmx then counts as successful, so the status itself is checked.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.target;
    var xhr = event.detail.xhr;
    if (!event.detail.successful || (xhr && xhr.status >= 400)) return;
    if (!form.matches || !form.matches("form[data-reset-on-success]")) return;
    form.reset();
    refreshAll(form);
  });

  // A tap whose answer is a server failure (5xx, which htmx does not swap) or that never reached the
  // server would otherwise do nothing visible: the flash area says so, in the page's language, and the
  // form keeps what was written. Background polls (the unread badge, new posts) stay quiet; they try
  // again by themselves.
  function tellFailure(event, key) {
    var source = event.detail && event.detail.elt;
    var trigger = (source && source.getAttribute && source.getAttribute("hx-trigger")) || "";
    if (/\bevery\b|^load\b/.test(trigger)) return;
    var flash = document.getElementById("flash");
    var text = flash && flash.getAttribute(key);
    if (!text) return;
    var note = document.createElement("p");
    note.className = "flash error";
    note.setAttribute("role", "alert");
    note.textContent = text;
    flash.replaceChildren(note);
  }

  document.addEventListener("htmx:responseError", function (event) { tellFailure(event, "data-server-error"); });
  document.addEventListener("htmx:sendError", function (event) { tellFailure(event, "data-network-error"); });

  // A plain form whose step cannot be undone (publishing a deal) asks first; htmx forms use hx-confirm.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // "Copy link" beside a share, team or invite link: on a phone, selecting the text of a box is fiddly.
  // The clipboard API where the page may use it (https, or this machine), else the box's selection.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    var field = button && document.querySelector(button.getAttribute("data-copy"));
    if (!field) return;
    if (!button.hasAttribute("data-label")) button.setAttribute("data-label", button.textContent);
    function copied() {
      button.textContent = button.getAttribute("data-copied");
      setTimeout(function () { button.textContent = button.getAttribute("data-label"); }, 2000);
    }
    function bySelection() {
      field.select();
      if (document.execCommand("copy")) copied();
    }
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(field.value).then(copied, bySelection);
    else bySelection();
  });

  // The repost and comment buttons of a post card open the small form under the card.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-toggle]");
    if (!button) return;
    var card = button.closest(".post");
    var panel = card && card.querySelector('[data-panel="' + button.getAttribute("data-toggle") + '"]');
    if (!panel) return;
    var others = card.querySelectorAll("[data-panel]");
    for (var i = 0; i < others.length; i++) if (others[i] !== panel) others[i].hidden = true;
    panel.hidden = !panel.hidden;
    button.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) {
      var box = panel.querySelector("textarea");
      if (box) { box.focus(); refresh(box); }
    }
  });

  // Countdowns (a deal card's end, a team's window) tick each second, as on Pinduoduo: "2天 03:04:05".
  // The server's `data-seconds-left` sets the end against this page's clock (not the device's date,
  // which may be wrong); a card redrawn by its poll brings a fresh figure. Without it, the `datetime`.
  var ends = new WeakMap();

  function two(n) { return (n < 10 ? "0" : "") + n; }

  function countdownText(seconds) {
    var days = Math.floor(seconds / 86400), rest = seconds % 86400;
    var clock = two(Math.floor(rest / 3600)) + ":" + two(Math.floor(rest / 60) % 60) + ":" + two(rest % 60);
    if (!days) return clock;
    var zh = (document.documentElement.lang || "").toLowerCase().indexOf("zh") === 0;
    return days + (zh ? "天 " : "d ") + clock;
  }

  function tick() {
    var now = performance.now();
    var clocks = document.querySelectorAll("time[data-countdown]");
    for (var i = 0; i < clocks.length; i++) {
      var clock = clocks[i], end = ends.get(clock);
      if (end === undefined) {
        var left = parseInt(clock.getAttribute("data-seconds-left"), 10);
        if (isNaN(left)) left = Math.round((Date.parse(clock.getAttribute("datetime")) - Date.now()) / 1000);
        if (isNaN(left)) continue;
        end = now + left * 1000;
        ends.set(clock, end);
      }
      clock.textContent = countdownText(Math.max(0, Math.ceil((end - now) / 1000)));
    }
  }

  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 1000);

  // A deal page shows its checkout as the deal was when the page was drawn. When its card, redrawn by its
  // poll, finds the deal come on sale (its start has come) or gone off sale (ended, sold out), the page is
  // drawn again, so the buy buttons appear or go without the shopper having to reload.
  document.addEventListener("htmx:afterSettle", function () {
    var page = document.querySelector("[data-deal-page]");
    var card = page && page.querySelector(".deal-card[data-on-sale]");
    if (card && card.getAttribute("data-on-sale") !== page.getAttribute("data-on-sale")) {
      window.location.reload();
    }
  });

  // A form sent back refused (the deal editor): its first problem, which the page focuses itself (so a
  // browser without scripts scrolls to it too), is brought to the middle of the screen, its sentence
  // with it, clear of the sticky header and save bar.
  document.addEventListener("DOMContentLoaded", function () {
    var problem = document.querySelector("[data-first-problem]");
    if (problem && problem.scrollIntoView) problem.scrollIntoView({ block: "center" });
  });

  window.weituanWeightedLength = weightedLength;
  window.weituanCountdownText = countdownText;
})();
