// movie-queue serve: the little script of the dashboard. It never builds
// HTML from data: every value it writes goes in as text (textContent);
// the one HTML it inserts is an event's row the server rendered with the
// page's own template (escaped as every page is).
"use strict";

// Errors are written into the page, where the browser test finds them.
function reportError(text) {
  var box = document.getElementById("js-errors");
  if (!box) {
    box = document.createElement("pre");
    box.id = "js-errors";
    box.className = "error";
    document.body.appendChild(box);
  }
  box.textContent += text + "\n";
  document.body.setAttribute("data-js-errors", "yes");
}
window.addEventListener("error", function (event) {
  reportError("error: " + event.message + " at " + event.filename + ":" + event.lineno);
});
window.addEventListener("unhandledrejection", function (event) {
  reportError("unhandled rejection: " + event.reason);
});
document.addEventListener("securitypolicyviolation", function (event) {
  reportError("content security policy: " + event.violatedDirective + " " + event.blockedURI);
});

// A local date-time as every page writes one: 2025-10-18 14:03:09.
function localTime(seconds) {
  var date = new Date(Math.round(seconds * 1000));
  function two(number) { return (number < 10 ? "0" : "") + number; }
  return date.getFullYear() + "-" + two(date.getMonth() + 1) + "-" + two(date.getDate()) + " " +
    two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds());
}

// "in 1h 2m 3s" / "ready".
function countdown(seconds) {
  if (seconds <= 0) return "ready";
  var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
  var m = Math.floor(seconds % 3600 / 60), s = Math.floor(seconds % 60);
  if (d > 0) return "in " + d + "d " + h + "h";
  if (h > 0) return "in " + h + "h " + m + "m " + s + "s";
  if (m > 0) return "in " + m + "m " + s + "s";
  return "in " + s + "s";
}
function tick() {
  var now = Date.now() / 1000;
  document.querySelectorAll("[data-until]").forEach(function (element) {
    var until = parseFloat(element.getAttribute("data-until"));
    if (!isNaN(until)) element.textContent = countdown(until - now);
  });
}

// Every page follows the store: server-sent events from /api/live. The
// indicator in the header says the last record, how far behind the
// journal the server is, and when this page is disconnected from the
// server (the browser reconnects by itself); the banner shows what the
// server says happened to the store. The server words both; the script
// writes them as they come.
function showStatus(live, shown) {
  live.textContent = shown.indicator;
  live.setAttribute("data-last-seq", String(shown.last_seq));
  var banner = document.getElementById("banner");
  if (!banner) return;
  banner.textContent = "";
  shown.banners.forEach(function (line) {
    var p = document.createElement("p");
    p.textContent = line;
    banner.appendChild(p);
  });
  banner.hidden = shown.banners.length === 0;
}
function showCounts(counts) {
  var names = {
    "pending": counts.pending, "in flight": counts.in_flight, "failed": counts.failed,
    "permanent failures": counts.permanent_failures, "completed": counts.completed,
    "removed": counts.removed
  };
  Object.keys(names).forEach(function (name) {
    var cell = document.querySelector('#counts [data-count="' + name + '"]');
    if (cell) cell.textContent = String(names[name]);
  });
}
function follow() {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var source = new EventSource("/api/live");
  source.addEventListener("hello", function (message) {
    live.classList.add("on");
    live.classList.remove("off");
    document.body.removeAttribute("data-disconnected");
    showStatus(live, JSON.parse(message.data).shown);
  });
  source.addEventListener("status", function (message) {
    showStatus(live, JSON.parse(message.data));
  });
  source.addEventListener("lagged", function () {
    fetch("/api/stats").then(function (response) { return response.json(); }).then(showCounts);
  });
  source.addEventListener("records", function (message) {
    var data = JSON.parse(message.data);
    showStatus(live, data.shown);
    showCounts(data.counts);
    panelsSoon();
    var body = document.querySelector("#recent tbody");
    if (body) {
      // Oldest first, each on top: the newest ends first. The rows are the
      // ones the server rendered with the page's own template.
      data.records.forEach(function (record) {
        body.insertAdjacentHTML("afterbegin", record.row);
        body.rows[0].className = "fresh";
      });
      while (body.rows.length > 12) body.deleteRow(body.rows.length - 1);
    }
  });
  source.onerror = function () {
    live.classList.remove("on");
    live.classList.add("off");
    live.textContent = "disconnected from the server · reconnecting";
    document.body.setAttribute("data-disconnected", "yes");
  };
}

// The overview's failure and retry panels follow the store too: a
// record makes the page read /api/overview again (at most once a second)
// and rebuild them, every value as text.
var panelsTimer = null;
function panelsSoon() {
  if (!document.getElementById("failures") || panelsTimer) return;
  panelsTimer = setTimeout(function () {
    panelsTimer = null;
    fetch("/api/overview").then(function (response) { return response.json(); }).then(showPanels);
  }, 1000);
}
function fill(tableId, emptyId, items, cells) {
  var table = document.getElementById(tableId);
  var body = table.querySelector("tbody");
  body.textContent = "";
  items.forEach(function (item) {
    var row = document.createElement("tr");
    cells(item).forEach(function (content) {
      var td = document.createElement("td");
      if (typeof content === "string") td.textContent = content;
      else {
        if (content.className) td.className = content.className;
        td.appendChild(content.node);
      }
      row.appendChild(td);
    });
    body.appendChild(row);
  });
  table.hidden = items.length === 0;
  document.getElementById(emptyId).hidden = items.length !== 0;
}
function showPanels(overview) {
  fill("failures", "failures-empty", overview.failures, function (failure) {
    return [{ className: "num", node: document.createTextNode(String(failure.count)) }, failure.message];
  });
  fill("retries", "retries-empty", overview.next_retries, function (row) {
    var link = document.createElement("a");
    link.href = "/movie?id=" + encodeURIComponent(row.id);
    link.textContent = row.id;
    var countdown = document.createElement("span");
    countdown.className = "countdown";
    countdown.setAttribute("data-until", row.retry_after === null ? "" : String(Math.round(row.retry_after)));
    countdown.textContent = row.retry_in;
    return [{ node: link }, row.title, { className: "num", node: document.createTextNode(String(row.retry_count)) },
      { node: countdown }];
  });
}

// The time-travel slider: its label follows it; letting go goes there.
function slider() {
  var input = document.getElementById("travel-slider");
  var label = document.getElementById("travel-label");
  if (!input || !label) return;
  function show() {
    if (input.getAttribute("data-mode") === "time") {
      label.textContent = "slider at " + localTime(parseFloat(input.value));
    } else {
      label.textContent = "slider at record " + input.value;
    }
  }
  input.addEventListener("input", show);
  input.addEventListener("change", function () {
    document.getElementById("travel-form").submit();
  });
  show();
}

// `serve --allow-actions`: a movie page's buttons, carried out by the
// process holding the store; the page is read again once it is done.
function actions() {
  var box = document.getElementById("actions");
  if (!box) return;
  var status = document.getElementById("action-result");
  box.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    box.querySelectorAll("button").forEach(function (each) { each.disabled = true; });
    status.textContent = "asking the process that holds the store";
    fetch("/api/action", {
      method: "POST",
      headers: { "content-type": "application/json", "x-csrf-token": box.getAttribute("data-csrf") },
      body: JSON.stringify({ action: button.getAttribute("data-action"), id: button.getAttribute("data-id") })
    }).then(function (response) {
      return response.json().then(function (body) {
        if (response.ok) {
          status.textContent = body.message;
          window.location.reload();
        } else {
          status.textContent = body.error || ("failed: " + response.status);
          box.querySelectorAll("button").forEach(function (each) { each.disabled = false; });
        }
      });
    }).catch(function (error) {
      status.textContent = "failed: " + error;
      box.querySelectorAll("button").forEach(function (each) { each.disabled = false; });
    });
  });
}

document.addEventListener("DOMContentLoaded", function () {
  actions();
  tick();
  setInterval(tick, 1000);
  follow();
  slider();
  document.body.setAttribute("data-js", "ready");
});
