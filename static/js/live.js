// Live updates for the transaction pages, over server-sent events from /transactions/stream.
// Every event has an id; the page remembers the last one it saw, so after any reconnect the
// server replays what was missed. Updates are idempotent: an event seen twice changes nothing.
(function () {
  "use strict";

  var list = document.querySelector("[data-live-list]");
  var detail = document.querySelector("[data-live-transaction]");
  var root = list || detail;
  if (!root || !window.EventSource) { return; }

  var FINAL = ["verified", "denied", "cancelled", "expired"];
  var lastId = Number(root.getAttribute("data-last-event-id")) || 0;
  var seen = new Set();
  var source = null;
  var retryTimer = null;
  var retryDelay = 1000;
  // The indicator and the lost-connection banner (live_status.js).
  var status = window.SendAuthLiveStatus(
    "[data-live-list], [data-live-transaction], [data-deliveries]");

  function connect() {
    clearTimeout(retryTimer);
    if (source) { source.close(); }
    source = new EventSource(root.getAttribute("data-stream-url") + "?after=" + lastId);
    source.onopen = function () {
      retryDelay = 1000;
      status.opened();
    };
    source.onmessage = function (event) {
      handle(JSON.parse(event.data));
      status.message();
    };
    source.onerror = function () {
      if (source.readyState === EventSource.CLOSED) {
        // The browser gives up after an HTTP error; keep trying, from the last event seen.
        source.close();
        retryTimer = setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      }
      status.failed();
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

  // Rows are drawn by the server (templates/transactions/_row.html), the same live as on a
  // reload: each event of a transaction carries its row as of that event.
  function updateList(message) {
    var t = message.transaction;
    var fresh = fragment(message.html.row);
    var row = list.querySelector('tr[data-transaction-id="' + cssEscape(t.id) + '"]');
    if (row) {
      // A pending row may turn final; a final one never changes again.
      var current = row.getAttribute("data-status");
      if (FINAL.indexOf(current) !== -1 && fresh.getAttribute("data-status") !== current) {
        return;
      }
      // A row that has just arrived keeps its highlight when its next event (often its
      // delivery, a moment later) redraws it.
      if (row.classList.contains("arrived")) { fresh.classList.add("arrived"); }
      row.replaceWith(fresh);
      moveTabCount(current, fresh.getAttribute("data-status"));
      return;
    }
    if (message.kind === "transaction.created" && acceptsNew(t)) {
      fresh.classList.add("arrived");
      list.tBodies[0].insertBefore(fresh, list.tBodies[0].firstChild);
      var empty = document.querySelector("[data-empty]");
      if (empty) { empty.hidden = true; }
      countOneMore();
      moveTabCount(null, fresh.getAttribute("data-status"));
    }
  }

  // The status tabs' counts follow the rows this page sees change: one fewer in the state a
  // row left, one more in the state it entered (and in "All" for a new one).
  function moveTabCount(from, to) {
    if (from === to) { return; }
    addToTab(from, -1);
    addToTab(to, 1);
    if (!from) { addToTab("all", 1); }
  }

  function addToTab(status, change) {
    var tab = status && document.querySelector('[data-status-tab="' + cssEscape(status) + '"]');
    var count = tab && tab.querySelector("[data-count]");
    if (!count) { return; }
    var value = Number(count.textContent.replace(/,/g, "")) + change;
    count.textContent = Math.max(0, value).toLocaleString("en");
  }

  // The element the server drew (a row, a line): parsed, never written as script.
  function fragment(html) {
    var template = document.createElement("template");
    template.innerHTML = html;
    return template.content.firstElementChild;
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

  function countOneMore() {
    var count = document.querySelector("[data-result-count]");
    if (!count || count.textContent.indexOf("More than") === 0) { return; }
    var total = Number(count.getAttribute("data-total")) + 1;
    count.setAttribute("data-total", String(total));
    count.textContent = count.textContent.replace(/^[\d,]+ requests?/,
      total.toLocaleString("en") + (total === 1 ? " request" : " requests"));
  }

  // What weakens the proof, in words, in the page's banner. It only grows.
  function showRisks(risks) {
    if (!risks || !risks.length) { return; }
    var banner = document.querySelector("[data-risk-banner]");
    var items = banner && banner.querySelector("[data-risk-list]");
    if (!items || items.children.length > risks.length) { return; }
    items.textContent = "";
    risks.forEach(function (text) {
      var item = document.createElement("li");
      item.textContent = text;
      items.appendChild(item);
    });
    banner.hidden = false;
  }

  // A group member's answer: their row in the members table, and how many more are needed.
  function updateApprovals(data) {
    var answer = document.querySelector('[data-member-id="' + data.member_id + '"] [data-answer]');
    if (answer) { answer.textContent = data.answer; }
    var needed = document.querySelector("[data-field=approvals-needed]");
    if (needed && typeof data.approvals_needed === "number") {
      needed.textContent = String(data.approvals_needed);
    }
  }

  function updateDetail(message) {
    if (message.transaction.id !== root.getAttribute("data-live-transaction")) { return; }
    showRisks(message.transaction.risks);
    if (message.delivery) { updateDelivery(message.delivery); }
    addToTimeline(message.id, message.html.line);
    if (message.kind.indexOf("approval.") === 0) { updateApprovals(message.data); }
    if (changesStatus(message) && setStatus(root, message.transaction.status) &&
        FINAL.indexOf(message.transaction.status) !== -1) {
      document.querySelectorAll("[data-pending-only], .flashes").forEach(function (el) {
        el.hidden = true;
      });
      var banner = document.querySelector("[data-outcome]");
      if (banner && message.html.outcome) { banner.innerHTML = message.html.outcome; }
      document.querySelectorAll("[data-final-only]").forEach(function (el) { el.hidden = false; });
      // Deliveries still waiting are never sent once the request is final.
      document.querySelectorAll('[data-deliveries] tr[data-state="queued"]').forEach(function (r) {
        r.setAttribute("data-state", "cancelled");
        setDeliveryCell(r, "state_words", "Not sent");
        setDeliveryCell(r, "next_retry_at", "");
      });
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

  // The event's line as the server drew it (templates/transactions/_timeline.html); none for
  // what the timeline does not keep.
  function addToTimeline(id, html) {
    var timeline = document.querySelector("[data-timeline]");
    if (!html || timeline.querySelector('[data-event-id="' + id + '"]')) { return; }
    var item = fragment(html);
    item.classList.add("arrived");
    timeline.appendChild(item);
  }

  function setDeliveryCell(row, name, value) {
    var target = row.querySelector('[data-cell="' + name + '"]');
    if (!target) { return; }
    target.textContent = "";
    if (name === "next_retry_at" && value) {
      target.appendChild(timeElement(value));
    } else {
      target.textContent = value === null || value === undefined ? "" : String(value);
    }
    if (name === "state_words") {
      target.className = target.className.replace(/delivery-\w+/,
        "delivery-" + row.getAttribute("data-state"));
    }
  }

  function updateDelivery(d) {
    var table = document.querySelector("[data-deliveries]");
    var row = table && table.querySelector('tr[data-channel="' + cssEscape(d.key || d.channel) + '"]');
    if (!row) { return; }
    var state = row.getAttribute("data-state");
    // A finished delivery stays finished; an older event arriving late changes nothing.
    if ((state === "sent" || state === "failed") && d.state !== state) { return; }
    if (Number(row.querySelector('[data-cell="attempts"]').textContent) > d.attempts &&
        d.attempts) { return; }
    row.setAttribute("data-state", d.state);
    ["state_words", "attempts", "answer", "took", "next_retry_at"].forEach(function (name) {
      if (name !== "attempts" || d.attempts) { setDeliveryCell(row, name, d[name]); }
    });
    row.classList.remove("arrived");
    void row.offsetWidth;
    row.classList.add("arrived");
  }

  function timeElement(iso) {
    var time = document.createElement("time");
    time.setAttribute("datetime", iso);
    time.setAttribute("data-local", "");
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
