// The Relais dashboard: reads /api/v1/ every 5 s and renders it. No framework, no network
// beyond this broker. Every value is inserted as text (textContent), never as HTML.
"use strict";

const REFRESH_MS = 5000;
const OLD_MS = 60 * 60 * 1000; // an hour waiting is worth a colour
let token = sessionStorage.getItem("relais-admin-token") || "";

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function age(ms) {
  if (ms === null || ms === undefined) return "–";
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  if (s < 86400) return Math.floor(s / 3600) + " h " + String(Math.floor(s / 60) % 60).padStart(2, "0");
  return Math.floor(s / 86400) + " d " + (Math.floor(s / 3600) % 24) + " h";
}

function when(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

class Unauthorized extends Error {}

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch("/api/v1/" + path, { headers, cache: "no-store" });
  if (r.status === 401) throw new Unauthorized();
  if (!r.ok) throw new Error(path + ": " + r.status);
  return r.json();
}

function renderStatus(s) {
  $("territory").textContent = s.territory || (s.mode === "insecure" ? "development (insecure)" : "");
  const ready = $("ready");
  ready.textContent = s.ready ? "ready" : "not ready: " + s.ready_reason;
  ready.className = "badge " + (s.ready ? "ok" : "bad");
  $("uptime").textContent = age(s.uptime_ms);
  $("version").textContent = s.version;
  $("pending").textContent = s.deliveries_pending;
  $("oldest").textContent = age(s.oldest_pending_age_ms);
  $("accepted").textContent = s.accepted;
  $("dead-count").textContent = s.dead_letters;
}

function renderAgents(agents) {
  const online = agents.filter((a) => a.online).length;
  $("agents-online").textContent = online;
  $("agents-known").textContent = agents.length;
  const byRole = new Map();
  for (const a of agents) {
    const role = a.role || "unlisted";
    if (!byRole.has(role)) byRole.set(role, []);
    byRole.get(role).push(a);
  }
  const roles = $("roles");
  roles.replaceChildren();
  for (const [role, list] of [...byRole.entries()].sort()) {
    const on = list.filter((a) => a.online).length;
    const ul = el("ul", { class: "agents" });
    list.sort((x, y) => (y.online - x.online) || x.address.localeCompare(y.address));
    for (const a of list) {
      const pending = el("span", { class: "pending" + (a.pending ? " waiting" : "") },
        a.pending ? a.pending + " waiting" : "");
      ul.append(el("li", { class: "agent", "data-address": a.address, "data-online": String(a.online),
        title: a.online ? "online" : "offline" }, el("span", { class: "dot" }), a.address, pending));
    }
    roles.append(el("div", { class: "role", "data-role": role },
      el("h3", {}, role.replace("_", " "), el("span", { class: "count" }, on + " / " + list.length + " online")), ul));
  }
}

function renderMailboxes(m) {
  const rows = m.mailboxes.slice().sort((x, y) => y.pending - x.pending).slice(0, 25);
  const body = $("mailboxes");
  body.replaceChildren();
  for (const b of rows) {
    body.append(el("tr", { class: "mailbox" + (b.oldest_age_ms > OLD_MS ? " old" : ""), "data-address": b.address },
      el("td", { class: "addr" }, b.address), el("td", {}, b.role || ""), el("td", {}, b.online ? "yes" : "no"),
      el("td", { class: "num" }, b.queued), el("td", { class: "num" }, b.in_flight),
      el("td", { class: "num age" }, age(b.oldest_age_ms))));
  }
  $("mailboxes-empty").hidden = rows.length > 0;
}

function renderDead(d) {
  const body = $("dead");
  body.replaceChildren();
  for (const x of d.dead_letters) {
    body.append(el("tr", { class: "dead" }, el("td", {}, when(x.at_ms)),
      el("td", { class: "addr", title: x.message_id }, x.message_id.slice(0, 13) + "…"),
      el("td", { class: "addr" }, x.sender), el("td", { class: "addr" }, x.recipient),
      el("td", {}, x.body_type || ""), el("td", {}, x.reason)));
  }
  $("dead-empty").hidden = d.dead_letters.length > 0;
}

function renderRisk(r) {
  const body = $("risk");
  body.replaceChildren();
  for (const x of r.at_risk) {
    body.append(el("tr", { class: "risk" + (x.deadline_in_ms < 3600 * 1000 ? " old" : "") },
      el("td", { class: "age" }, age(x.deadline_in_ms)),
      el("td", { class: "addr", title: x.message_id }, x.message_id.slice(0, 13) + "…"),
      el("td", { class: "addr" }, x.sender), el("td", { class: "addr" }, x.recipient),
      el("td", {}, x.body_type || ""), el("td", {}, x.state), el("td", { class: "num" }, x.attempt)));
  }
  $("risk-count").textContent = r.at_risk.length >= 100 ? "100+" : r.at_risk.length;
  $("risk-empty").hidden = r.at_risk.length > 0;
}

function renderEscalations(e) {
  const body = $("escalations");
  body.replaceChildren();
  for (const x of e.escalations) {
    body.append(el("tr", { class: "escalation" }, el("td", {}, when(x.at_ms)),
      el("td", { class: "addr", title: x.message_id }, x.message_id.slice(0, 13) + "…"),
      el("td", { class: "addr" }, x.sender), el("td", { class: "addr" }, x.to || ""),
      el("td", {}, x.original_type || ""), el("td", { class: "addr" }, x.responsible || ""),
      el("td", {}, when(x.deadline_ms))));
  }
  $("esc-count").textContent = e.escalations.length;
  $("escalations-empty").hidden = e.escalations.length > 0;
}

function renderChart(t) {
  const svg = $("chart");
  const NS = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const mins = t.minutes.slice(-60);
  const max = Math.max(1, ...mins.map((m) => m.accepted));
  const W = 600, H = 100, top = 14, slot = W / 60;
  const offset = 60 - mins.length;
  mins.forEach((m, i) => {
    const h = ((H - top) * m.accepted) / max;
    const r = document.createElementNS(NS, "rect");
    for (const [k, v] of Object.entries({ x: (offset + i) * slot + 1, y: H - h, width: slot - 2,
      height: h, "data-accepted": m.accepted })) r.setAttribute(k, v);
    const tip = document.createElementNS(NS, "title");
    tip.textContent = new Date(m.minute_start_ms).toLocaleTimeString() + ": " + m.accepted;
    r.append(tip);
    svg.append(r);
  });
  $("chart-max").textContent = "peak " + max + " / min";
}

async function refresh() {
  try {
    const [status, agents, mailboxes, dead, through, esc, risk] = await Promise.all([
      api("status"), api("agents"), api("mailboxes?limit=1000"), api("deadletters?limit=20"),
      api("throughput"), api("escalations"), api("atrisk?limit=100")]);
    $("token-form").hidden = true;
    $("main").hidden = false;
    renderStatus(status);
    renderAgents(agents.agents);
    renderMailboxes(mailboxes);
    renderDead(dead);
    renderChart(through);
    renderEscalations(esc);
    renderRisk(risk);
    $("updated").textContent = new Date().toLocaleTimeString();
    document.body.dataset.state = "loaded";
  } catch (e) {
    if (e instanceof Unauthorized) {
      $("main").hidden = true;
      $("token-form").hidden = false;
      $("token-error").textContent = token ? "wrong token" : "";
      document.body.dataset.state = "token";
    } else {
      $("ready").textContent = "unreachable";
      $("ready").className = "badge bad";
      document.body.dataset.state = "error";
    }
  }
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("relais-admin-token", token);
  refresh();
});

refresh();
setInterval(refresh, REFRESH_MS);
