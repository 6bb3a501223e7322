// Live updates for the transaction pages, over server-sent events from /transactions/stream.
// Every event has an id; the page remembers the last one it saw, so after any reconnect the
// server replays what was missed. Updates are idempotent: an event seen twice changes nothing.
(function () {
  "use strict";

  var list = document.querySelector("[data-live-list]");
  var detail = document.querySelector("[data-live-transaction]");
  var root = list || detail;
  if (!root || !window.EventSource) { return; }

  var indicator = document.querySelector("[data-live-indicator]");
  var label = indicator && indicator.querySelector("[data-live-label]");
  var FINAL = ["verified", "denied", "cancelled", "expired"];
  var lastId = Number(root.getAttribute("data-last-event-id")) || 0;
  var seen = new Set();
  var source = null;
  var retryTimer = null;
  var retryDelay = 1000;

  function setState(state, text) {
    if (!indicator) { return; }
    indicator.setAttribute("data-state", state);
    label.textContent = text;
  }

  function connect() {
    clearTimeout(retryTimer);
    if (source) { source.close(); }
    source = new EventSource(root.getAttribute("data-stream-url") + "?after=" + lastId);
    source.onopen = function () {
      retryDelay = 1000;
      setState("live", "Live");
    };
    source.onmessage = function (event) {
      handle(JSON.parse(event.data));
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gives up after an HTTP error; keep trying, from the last event seen.
        source.close();
        setState("reconnecting", "Reconnecting…");
        retryTimer = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        setState("reconnecting", "Reconnecting…");
      }
    };
  }

  function handle(message) {
    if (seen.has(message.id)) { return; }
    seen.add(message.id);
    lastId = Math.max(lastId, message.id);
    if (list) { updateList(message); } else { updateDetail(message); }
  }

  function changesStatus(message) {
    return message.kind.indexOf("transaction.") === 0;
  }

  // A pending badge may turn final; a final one never changes again.
  function setStatus(container, status) {
    var badge = container.querySelector("[data-field=status]");
    var current = container.getAttribute("data-status") || badge.textContent.trim();
    if (FINAL.indexOf(current) !== -1 || current === status) { return false; }
    container.setAttribute("data-status", status);
    badge.textContent = status;
    badge.className = badge.className.replace(/status-\w+/, "status-" + status);
    return true;
  }

  function updateList(message) {
    var t = message.transaction;
    var row = list.querySelector('tr[data-transaction-id="' + cssEscape(t.id) + '"]');
    if (row) {
      if (changesStatus(message)) { setStatus(row, t.status); }
      if (message.data.incident_state) { setIncidentInRow(row, message.data.incident_state); }
      return;
    }
    if (message.kind === "transaction.created" && acceptsNew(t)) {
      list.tBodies[0].insertBefore(buildRow(t), list.tBodies[0].firstChild);
      var empty = document.querySelector("[data-empty]");
      if (empty) { empty.hidden = true; }
    }
  }

  // PagerDuty's state of the incident, under the status badge (as _row.html renders it).
  function setIncidentInRow(row, state) {
    var field = row.querySelector("[data-field=incident]");
    if (!field) {
      var note = document.createElement("span");
      note.className = "muted small";
      note.appendChild(document.createTextNode("PagerDuty: "));
      field = document.createElement("span");
      field.setAttribute("data-field", "incident");
      note.appendChild(field);
      row.cells[0].appendChild(document.createElement("br"));
      row.cells[0].appendChild(note);
    }
    field.textContent = state;
  }

  function acceptsNew(t) {
    var status = list.getAttribute("data-filter-status");
    var user = list.getAttribute("data-filter-user");
    var requestor = list.getAttribute("data-filter-requestor");
    return list.getAttribute("data-accept-new") === "true" &&
      (!status || status === t.status) &&
      (!user || user === t.user_email.toLowerCase()) &&
      (!requestor || requestor === t.requestor_email.toLowerCase());
  }

  function cell(row) {
    var td = document.createElement("td");
    row.appendChild(td);
    return td;
  }

  function buildRow(t) {
    var row = document.createElement("tr");
    row.setAttribute("data-transaction-id", t.id);
    row.setAttribute("data-status", t.status);
    row.className = "arrived";
    var badge = document.createElement("span");
    badge.className = "badge status-" + t.status;
    badge.setAttribute("data-field", "status");
    badge.textContent = t.status;
    cell(row).appendChild(badge);
    var who = cell(row);
    var link = document.createElement("a");
    link.href = list.getAttribute("data-show-url").replace("__ID__", encodeURIComponent(t.id));
    link.textContent = t.user;
    var email = document.createElement("span");
    email.className = "muted small";
    email.textContent = t.user_email;
    who.appendChild(link);
    who.appendChild(document.createElement("br"));
    who.appendChild(email);
    cell(row).textContent = t.requestor;
    var text = cell(row);
    text.className = "message";
    text.textContent = t.message.length > 90 ? t.message.slice(0, 87) + "..." : t.message;
    cell(row).appendChild(timeElement(t.created_at));
    return row;
  }

  function updateDetail(message) {
    if (message.transaction.id !== root.getAttribute("data-live-transaction")) { return; }
    var timeline = document.querySelector("[data-timeline]");
    if (!timeline.querySelector('[data-event-id="' + message.id + '"]')) {
      var item = document.createElement("li");
      item.setAttribute("data-event-id", String(message.id));
      item.className = "arrived";
      item.appendChild(timeElement(message.at));
      item.appendChild(document.createTextNode(" " + message.text));
      appendIncidentLink(item, message.data);
      timeline.appendChild(item);
    }
    if (changesStatus(message) && setStatus(root, message.transaction.status) &&
        FINAL.indexOf(message.transaction.status) !== -1) {
      document.querySelectorAll("[data-pending-only]").forEach(function (el) { el.hidden = true; });
      document.querySelectorAll("[data-final-only]").forEach(function (el) { el.hidden = false; });
    }
    var incident = message.data.incident_state;
    if (incident) {
      var field = root.querySelector("[data-field=incident]");
      if (field) { field.textContent = incident; }
    }
    if (incident === "resolved" || message.kind === "pagerduty.resolve_requested") {
      document.querySelectorAll("[data-resolve-incident]").forEach(function (el) {
        el.hidden = true;
        el.removeAttribute("data-final-only");
      });
    }
  }

  // As show.html renders it: " · incident #12", linking to PagerDuty (https only).
  function appendIncidentLink(item, data) {
    if (typeof data.html_url !== "string" || data.html_url.indexOf("https://") !== 0) { return; }
    var link = document.createElement("a");
    link.href = data.html_url;
    link.rel = "noopener noreferrer";
    link.textContent = data.number ? "incident #" + data.number : "the incident";
    item.appendChild(document.createTextNode(" · "));
    item.appendChild(link);
  }

  function timeElement(iso) {
    var time = document.createElement("time");
    time.setAttribute("datetime", iso);
    time.textContent = formatUtc(new Date(iso));
    return time;
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  function formatUtc(d) {
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds()) + " UTC";
  }

  function cssEscape(value) {
    return window.CSS && CSS.escape ? CSS.escape(value) : value.replace(/["\\]/g, "\\$&");
  }

  window.addEventListener("pagehide", function () {
    clearTimeout(retryTimer);
    if (source) { source.close(); }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { connect(); }
  });
  connect();
}());
