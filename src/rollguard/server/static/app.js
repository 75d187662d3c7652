// rollguard's live page: polls the JSON API and redraws. No framework, no CDN.
// Every value from the API is put in the page as text (never as HTML).
"use strict";

const POLL_MS = 1000;
const MAX_DETAILED = 40;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fmt(value, digits = 2) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toFixed(digits);
}

function shortTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleTimeString();
}

function label(status) {
  return (status || "unknown").replace(/_/g, " ").toUpperCase();
}

function split(weights) {
  const canary = weights && weights.canary;
  if (canary === null || canary === undefined) {
    return el("div", { class: "split", title: "traffic split unknown" }, el("div", { style: "width:100%", text: "traffic split unknown" }));
  }
  const stable = 100 - canary;
  return el("div", { class: "split", "data-testid": "split", title: `stable ${stable}% / canary ${canary}%` },
    el("div", { class: "stable", style: `width:${stable}%`, text: stable ? `stable ${stable}%` : "" }),
    el("div", { class: "canary", style: `width:${canary}%`, text: canary ? `canary ${canary}%` : "" }));
}

function meter(value, limit) {
  if (typeof value !== "number" || typeof limit !== "number" || limit <= 0) return el("span", { class: "muted", text: "" });
  const share = Math.min(value / limit, 1.5) / 1.5 * 100;
  return el("div", { class: "meter" + (value > limit ? " over" : ""), title: `${fmt(value)} of limit ${fmt(limit)}` },
    el("span", { style: `width:${share.toFixed(1)}%` }));
}

function signalsTable(signals) {
  if (!signals || !signals.length) return el("p", { class: "muted", text: "no evaluation yet" });
  return el("table", { class: "signals" },
    el("thead", {}, el("tr", {}, ["trigger", "value", "limit", "vs limit", "reference", "status"].map((h) => el("th", { text: h })))),
    el("tbody", {}, signals.map((row) => el("tr", {},
      el("td", { title: row.signal, text: row.trigger }),
      el("td", { text: fmt(row.value) }),
      el("td", { text: fmt(row.limit) }),
      el("td", {}, meter(row.value, row.limit)),
      el("td", { text: row.reference === null ? "—" : `${fmt(row.reference)} (${row.reference_source})` }),
      el("td", {}, el("span", { class: `badge ${row.status}`, title: row.reason || "", text: row.status })),
    ))));
}

function decisionBox(decision, outcome) {
  if (!decision) return null;
  const acted = decision.verdict !== "continue";
  return el("div", { class: "decision" + (acted ? "" : " continue"), "data-testid": "decision" },
    el("strong", { text: acted ? `Decision: ${decision.action}` : "Decision: continue" }),
    decision.trigger ? el("span", { text: ` — trigger ${decision.trigger}` }) : null,
    el("div", { class: "muted", text: decision.reason }),
    outcome ? el("div", { text: `Outcome: ${outcome.outcome} (${outcome.reason})` }) : null);
}

function timelineList(items) {
  if (!items || !items.length) return el("p", { class: "muted", text: "nothing has happened yet" });
  return el("ol", { class: "timeline", "data-testid": "timeline" }, items.map((item) => el("li", {},
    el("time", { datetime: item.at, text: shortTime(item.at) }),
    el("span", { class: "kind", text: item.kind }),
    el("span", { text: item.message }),
    item.evidence && item.evidence.length
      ? el("details", {}, el("summary", { text: "evidence" }), el("pre", { text: JSON.stringify(item.evidence, null, 2) }))
      : null)));
}

function card(detail) {
  return el("article", { class: `card ${detail.status}`, "data-deployment": detail.name, "data-status": detail.status },
    el("div", { class: "card-head" },
      el("h3", { text: detail.name }),
      el("span", { class: `badge ${detail.status}`, "data-testid": "status", text: label(detail.status) }),
      el("span", { class: "muted", text: `policy ${detail.policy} · ${detail.evaluations} evaluations` })),
    split(detail.weights),
    decisionBox(detail.last_decision, detail.outcome),
    el("h4", { text: "Signals vs thresholds" }),
    signalsTable(detail.signals),
    el("h4", { text: "Timeline" }),
    timelineList(detail.timeline),
    detail.error ? el("p", { class: "badge error", text: detail.error }) : null);
}

async function getJSON(path) {
  const response = await fetch(path, { headers: { accept: "application/json" }, cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function drawErrors(errors) {
  const section = document.getElementById("policy-errors");
  const list = document.getElementById("policy-error-list");
  section.hidden = errors.length === 0;
  list.replaceChildren(...errors.map((e) => el("li", {}, el("code", { text: e.location }), ` ${e.field}: ${e.message}`)));
}

function drawAudit(body) {
  document.getElementById("audit-backend").textContent = `(${body.backend})`;
  const rows = body.entries.map((entry) => el("tr", {},
    el("td", { text: shortTime(entry.timestamp) }),
    el("td", { text: entry.deployment }),
    el("td", { text: entry.kind }),
    el("td", { text: entry.action }),
    el("td", { text: entry.trigger || "" }),
    el("td", { text: entry.outcome || "" }),
    el("td", { text: entry.reason || "" })));
  document.querySelector("#audit tbody").replaceChildren(...rows);
}

async function refresh() {
  const list = await getJSON("/api/v1/deployments");
  const names = list.deployments.map((d) => d.name);
  const details = await Promise.all(names.slice(0, MAX_DETAILED).map((name) =>
    getJSON(`/api/v1/deployments/${encodeURIComponent(name)}`).catch(() => null)));
  const cards = details.filter(Boolean).map(card);
  document.getElementById("deployments").replaceChildren(...cards);
  drawErrors(list.policy_errors);
  const rolled = list.deployments.filter((d) => ["rolled_back", "aborted"].includes(d.status)).length;
  const more = names.length > MAX_DETAILED ? ` (first ${MAX_DETAILED} shown)` : "";
  document.getElementById("summary").textContent =
    `${names.length} deployments, ${rolled} rolled back, ${list.policy_errors.length} policy errors${more}`;
  drawAudit(await getJSON("/api/v1/audit?limit=20"));
  document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function loop() {
  try {
    await refresh();
  } catch (error) {
    document.getElementById("updated").textContent = `update failed: ${error.message}`;
  }
  setTimeout(loop, POLL_MS);
}

loop();
