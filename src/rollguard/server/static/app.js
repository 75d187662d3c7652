// rollguard's live page: polls the JSON API and redraws. No framework, no CDN.
// Every value from the API is put in the page as text (never as HTML).
"use strict";

const POLL_MS = 1000;
const MAX_DETAILED = 40;
const CHART_SECONDS = 3600; // the live charts show the last hour
const HISTORY_AT_ONCE = 4; // first-load history requests in flight at a time
const SVG = "http://www.w3.org/2000/svg";
// deployment -> trigger -> [{t, value, reference, limit}]: the last hour from
// /api/v1/deployments/{name}/history when the page first sees a deployment, then each poll.
const history = new Map();
// deployment -> [{t, kind, text}]: decisions, actions and traffic steps from that history.
const events = new Map();

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

function plural(count, singular, many) {
  return `${count} ${count === 1 ? singular : many || singular + "s"}`;
}

// Units are part of a signal's name (error_rate_percent, latency_p95_ms, memory_mb).
function unitOf(signal) {
  const name = signal || "";
  if (name.endsWith("_percent")) return "%";
  if (name.endsWith("_ms")) return " ms";
  if (name.endsWith("_mb")) return " MB";
  if (name.endsWith("_per_minute")) return "/min";
  return "";
}

function withUnit(value, signal) {
  if (value === null || value === undefined) return "—";
  return `${fmt(value)}${unitOf(signal)}`;
}

// A sequential trigger's value is its e-value (evidence, unitless) and its limit 1/α.
function sequential(row) {
  return row.method === "sequential";
}

function eValue(value) {
  if (value === null || value === undefined) return "—";
  return value >= 1e4 || (value > 0 && value < 1e-2) ? value.toExponential(1) : fmt(value);
}

function shown(row, key) {
  if (!sequential(row)) return withUnit(row[key], row.signal);
  return key === "limit" ? `1/α = ${eValue(row.limit)}` : `e-value ${eValue(row[key])}`;
}

function shortTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (isNaN(date)) return iso;
  // Date and time, UTC like the audit trail: an incident spans midnight and time zones.
  return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

function label(status) {
  return (status || "unknown").replace(/_/g, " ").toUpperCase();
}

function split(weights) {
  const canary = weights && weights.canary;
  if (canary === null || canary === undefined || weights.assumed) {
    // Drawn only where the executor reads a split back: a stand-in's 80/20 would be made up.
    const why = weights && weights.assumed ? ` (${weights.assumed})` : " by this executor";
    return el("p", { class: "muted", "data-testid": "no-split", text: `traffic split not reported${why}` });
  }
  const stable = 100 - canary;
  // A narrow share (a progressive release's first steps) keeps only its number, or nothing.
  const words = (name, share) => (share >= 15 ? `${name} ${share}%` : share >= 5 ? `${share}%` : "");
  return el("div", { class: "split", "data-testid": "split", title: `stable ${stable}% / canary ${canary}%` },
    el("div", { class: "stable", style: `width:${stable}%`, text: words("stable", stable) }),
    el("div", { class: "canary", style: `width:${canary}%`, text: words("canary", canary) }));
}

// A progressive release: its step, the promotion test's evidence toward "no worse", the next step.
function promotionBox(promotion) {
  if (!promotion) return null;
  const next = promotion.next_weight === null ? "the last step" : `next step ${promotion.next_weight}%`;
  const held = promotion.held_by ? ` · held by ${promotion.held_by}` : "";
  const timing = `${fmt(promotion.step_seconds, 0)} s at this step (at least ${fmt(promotion.min_step_seconds, 1)} s, at most ${fmt(promotion.max_step_seconds, 1)} s)`;
  return el("section", { class: "promotion", "data-testid": "promotion", "data-step": promotion.step },
    el("p", {}, el("strong", { text: `Promotion: step ${promotion.step} of ${promotion.of}, canary ${promotion.canary_weight}%` }),
      ` · ${next}${held}`),
    el("p", { text: timing }),
    el("ul", { class: "evidence" }, promotion.evidence.map((test) => {
      const met = test.e_value >= test.threshold;
      const bound = test.bound === "step_beta" ? "step_beta" : "β";  // a step's looser bound
      const words = `${test.test}: e-value ${eValue(test.e_value)} of 1/${bound} = ${eValue(test.threshold)} toward "no worse"`;
      // Evidence grows by factors: the bar is on a log scale from 1 (none) to 1/β (enough).
      const share = Math.min(Math.log(Math.max(test.e_value, 1)) / Math.log(Math.max(test.threshold, 1.0001)), 1) * 100;
      return el("li", { "data-test": test.test, "data-met": String(met) },
        el("span", { text: words }),
        el("div", { class: "meter" + (met ? " met" : ""), role: "meter", "aria-valuemin": 1, "aria-valuemax": test.threshold,
          "aria-valuenow": test.e_value, "aria-label": words, title: words },
          el("span", { style: `width:${share.toFixed(1)}%` })));
    })),
    el("p", { "data-testid": "promotion-verdict", text: promotion.accepted ? `No worse: ${promotion.reason}` : `Not yet: ${promotion.reason}` }));
}

function meter(row) {
  const value = row.value, limit = row.limit;
  if (typeof value !== "number" || typeof limit !== "number" || limit <= 0) return el("span", { class: "muted", text: "" });
  // Evidence grows by factors: its bar is on a log scale from 1 (none) to 1/α.
  const ratio = sequential(row) ? Math.log(Math.max(value, 1)) / Math.log(Math.max(limit, 1.0001)) : value / limit;
  const share = Math.min(ratio, 1.5) / 1.5 * 100;
  const words = `${shown(row, "value")} of limit ${shown(row, "limit")}`;
  return el("div", { class: "meter" + (value > limit ? " over" : ""), role: "meter", "aria-valuemin": 0,
    "aria-valuemax": limit * 1.5, "aria-valuenow": value, "aria-label": words, title: words },
    el("span", { style: `width:${share.toFixed(1)}%` }));
}

function triggerName(row) {
  return el("td", { title: row.signal },
    row.trigger,
    sequential(row) ? el("span", { class: "tag", "data-testid": "sequential", title: "sequential test: evidence (e-value) against 1/α, no unit", text: "sequential" }) : null);
}

function signalsTable(signals) {
  if (!signals || !signals.length) return el("p", { class: "muted", text: "no evaluation yet" });
  return el("table", { class: "signals" },
    el("thead", {}, el("tr", {}, ["trigger", "value", "limit", "vs limit", "reference", "status"].map((h) => el("th", { text: h })))),
    el("tbody", {}, signals.map((row) => el("tr", {},
      triggerName(row),
      el("td", { class: "num", "data-unit": sequential(row) ? "e-value" : unitOf(row.signal).trim(), text: shown(row, "value") }),
      el("td", { class: "num", text: shown(row, "limit") }),
      el("td", {}, meter(row)),
      el("td", { text: sequential(row) ? `vs ${row.reference_source}` : row.reference === null ? "—" : `${withUnit(row.reference, row.signal)} (${row.reference_source})` }),
      el("td", {}, el("span", { class: `badge ${row.status}`, title: row.reason || "", text: row.status })),
    ))));
}

function decisionBox(decision, outcome, status) {
  if (!decision) return null;
  const acted = decision.action !== "continue";
  const unsure = status === "inconclusive" || decision.verdict === "inconclusive";
  // A watch that did not act says why (inconclusive, ended), never "Decision: continue".
  const heading = acted ? `Decision: ${decision.action}`
    : outcome ? `Ended ${String(outcome.outcome).replace(/_/g, " ")}: no action taken`
      : unsure ? "Inconclusive: no action taken"
        : "No action: within limits";
  const tone = acted ? "" : unsure ? " inconclusive" : " continue";
  return el("div", { class: "decision" + tone, "data-testid": "decision" },
    el("strong", { text: heading }),
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

// The last hour as `serve` kept it: columns per trigger, and the events to mark.
async function seed(name) {
  const body = await getJSON(`/api/v1/deployments/${encodeURIComponent(name)}/history`);
  const seen = new Map();
  for (const series of body.triggers) {
    seen.set(series.trigger, series.at.map((at, i) => ({
      t: at * 1000, value: series.value[i], reference: series.reference[i], limit: series.limit[i] })));
  }
  history.set(name, seen);
  events.set(name, body.events.map((event) => ({
    t: Date.parse(event.at), kind: event.kind === "weight" ? "step" : event.kind, text: event.message })));
}

function remember(detail) {
  const seen = history.get(detail.name) || new Map();
  history.set(detail.name, seen);
  // The time of the evaluation the signals come from (a status change is no new point).
  const at = Date.parse(detail.last_decision ? detail.last_decision.at : detail.updated_at);
  if (isNaN(at)) return seen;
  for (const row of detail.signals || []) {
    const points = seen.get(row.trigger) || [];
    seen.set(row.trigger, points);
    if (points.length && points[points.length - 1].t >= at) continue; // the same evaluation
    points.push({ t: at, value: row.value, reference: row.reference, limit: row.limit });
    while (points.length && points[0].t < at - CHART_SECONDS * 1000) points.shift();
  }
  return seen;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

function chart(row, points, marks) {
  const width = 520, height = 130, left = 52, right = 8, top = 10, bottom = 22;
  const evidence = sequential(row);
  const unit = evidence ? "" : unitOf(row.signal);
  const label = (v) => evidence ? eValue(v) : withUnit(v, row.signal);
  const numbers = (key) => points.map((p) => p[key]).filter((v) => typeof v === "number");
  const all = [...numbers("value"), ...numbers("reference"), ...numbers("limit"), evidence ? 1 : 0];
  // The axis runs to the newest mark too: an action's steps come after the last evaluation.
  const t1 = Math.max(points.length ? points[points.length - 1].t : Date.now(), ...marks.map((m) => m.t).filter((t) => !isNaN(t)));
  const t0 = Math.min(points.length ? points[0].t : t1, t1 - 1000);
  const x = (t) => left + (width - left - right) * (t - t0) / (t1 - t0);
  // The e-value multiplies as evidence comes in: drawn on a log scale, from 1 (no evidence).
  const floor = evidence ? Math.min(1, ...numbers("value").filter((v) => v > 0)) : 0;
  const scale = evidence ? (v) => Math.log10(Math.max(v, floor)) : (v) => v;
  const low = scale(floor);
  const high = evidence ? scale(Math.max(...all)) + 0.3 : Math.max(...all) * 1.15 || 1;
  const y = (v) => top + (height - top - bottom) * (1 - (scale(v) - low) / (high - low || 1));
  const top_value = evidence ? Math.pow(10, high - 0.3) : high / 1.15;
  const line = (key, cls) => {
    const drawn = points.filter((p) => typeof p[key] === "number");
    if (!drawn.length) return null;
    const path = drawn.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[key]).toFixed(1)}`).join("");
    return svg("path", { class: cls, d: drawn.length > 1 ? path : path + `h2`, "data-series": key });
  };
  const nodes = [svg("line", { class: "axis", x1: left, x2: width - right, y1: y(floor), y2: y(floor) }),
    svg("text", { class: "tick", x: left - 4, y: y(floor) + 4, "text-anchor": "end" }, evidence ? eValue(floor) : `0${unit}`),
    svg("text", { class: "tick", x: left - 4, y: y(top_value) + 4, "text-anchor": "end" }, label(top_value)),
    svg("text", { class: "tick", x: left, y: height - 6 }, shortTime(new Date(t0).toISOString())),
    svg("text", { class: "tick", x: width - right, y: height - 6, "text-anchor": "end" }, shortTime(new Date(t1).toISOString()))];
  // The limit each evaluation was judged against (a relative rule's moves with its
  // reference), held until the next one; the current limit where none was kept.
  const limits = points.filter((p) => typeof p.limit === "number");
  const edge = limits.length ? limits : typeof row.limit === "number" ? [{ t: t0, limit: row.limit }] : [];
  if (edge.length) {
    const steps = edge.map((p, i) => `${i ? "H" + x(p.t).toFixed(1) : ""}V${y(p.limit).toFixed(1)}`).join("");
    const upper = `M${left},${y(edge[0].limit).toFixed(1)}${steps}H${width - right}`;
    // The fault-free band: values up to the limit do not breach. Drawn first, behind the lines.
    nodes.unshift(svg("path", { class: "band", "data-testid": "fault-free-band", d: `${upper}V${y(floor).toFixed(1)}H${left}Z` },
      svg("title", {}, evidence ? `fault-free: e-value below 1/α = ${eValue(row.limit)} (no evidence of a fault yet)`
        : `fault-free: ${row.signal} up to the limit ${withUnit(row.limit, row.signal)} does not breach`)));
    nodes.push(svg("path", { class: "limit", "data-testid": "limit-line", d: upper },
      svg("title", {}, `limit ${shown(row, "limit")}`)));
  }
  const drawn = new Set();
  for (const mark of marks) {
    const key = `${mark.kind}@${mark.t}`;
    if (mark.t < t0 || mark.t > t1 || drawn.has(key)) continue;
    drawn.add(key);
    nodes.push(svg("line", { class: `mark ${mark.kind}`, "data-testid": `${mark.kind}-marker`, x1: x(mark.t), x2: x(mark.t), y1: top, y2: height - bottom },
      svg("title", {}, `${mark.text} at ${shortTime(new Date(mark.t).toISOString())}`)));
  }
  nodes.push(evidence ? null : line("reference", "reference"), line("value", "value"));
  const name = evidence
    ? `${row.trigger}: sequential test, e-value ${eValue(row.value)} against 1/α = ${eValue(row.limit)}`
    : `${row.trigger}: canary ${withUnit(row.value, row.signal)}, limit ${withUnit(row.limit, row.signal)}`;
  return el("figure", { class: "chart", "data-trigger": row.trigger, "data-method": row.method || "threshold", "data-points": points.length },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": name }, ...nodes.filter(Boolean)),
    el("figcaption", {}, el("strong", { text: row.trigger }), " ",
      evidence ? el("span", { class: "tag", text: "sequential" }) : null, " ",
      el("span", { class: "key value", text: evidence ? `e-value (canary vs ${row.reference_source}, no unit, log scale)` : "canary" }), " ",
      !evidence && row.reference_source ? el("span", { class: "key reference", text: row.reference_source }) : null, " ",
      el("span", { class: "key limit", text: evidence ? `1/α = ${eValue(row.limit)}` : `limit ${withUnit(row.limit, row.signal)}` }), " ",
      typeof row.limit === "number" ? el("span", { class: "key band", text: evidence ? "fault-free: below 1/α" : "fault-free: up to the limit" }) : null));
}

function charts(detail) {
  const seen = remember(detail);
  const marks = [...(events.get(detail.name) || []), ...(detail.timeline || [])
    .filter((item) => item.kind === "decision" || item.kind === "action")
    .map((item) => ({ t: Date.parse(item.at), kind: item.kind, text: item.message }))];
  // A trigger whose data stopped is still charted from what it measured before.
  const measured = (row) => (seen.get(row.trigger) || []).filter((p) => typeof p.value === "number");
  const rows = (detail.signals || []).filter((row) =>
    typeof row.value === "number" || typeof row.limit === "number" || measured(row).length);
  if (!rows.length) return null;
  return el("div", { class: "charts", "data-testid": "charts" }, rows.map((row) => {
    const last = measured(row).filter((p) => typeof p.limit === "number").pop();
    const shownRow = typeof row.limit === "number" || !last ? row : { ...row, limit: last.limit };
    return chart(shownRow, seen.get(row.trigger) || [], marks);
  }));
}

function card(detail) {
  return el("article", { class: `card ${detail.status}`, "data-deployment": detail.name, "data-status": detail.status },
    el("div", { class: "card-head" },
      el("h3", { text: detail.name }),
      el("span", { class: `badge ${detail.status}`, "data-testid": "status", text: label(detail.status) }),
      el("span", { class: "muted", text: `policy ${detail.policy} · ${plural(detail.evaluations, "evaluation")}` })),
    split(detail.weights),
    promotionBox(detail.promotion),
    decisionBox(detail.last_decision, detail.outcome, detail.status),
    el("h4", { text: "Signals vs thresholds (last hour)" }),
    charts(detail),
    signalsTable(detail.signals),
    el("h4", { text: "Timeline" }),
    timelineList(detail.timeline),
    detail.error ? el("p", { class: "badge error", text: detail.error }) : null);
}

// Runs work(item) for every item, at most `limit` at a time.
async function eachAtMost(limit, items, work) {
  const queue = [...items];
  const worker = async () => { while (queue.length) await work(queue.shift()); };
  await Promise.all(Array.from({ length: Math.min(limit, queue.length) }, worker));
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
  // A deployment seen for the first time starts its charts with the last hour; a page
  // opened on many deployments asks a few at a time, not one request per card at once.
  await eachAtMost(HISTORY_AT_ONCE, names.slice(0, MAX_DETAILED).filter((name) => !history.has(name)),
    (name) => seed(name).catch(() => null));
  const details = await Promise.all(names.slice(0, MAX_DETAILED).map((name) =>
    getJSON(`/api/v1/deployments/${encodeURIComponent(name)}`).catch(() => null)));
  const cards = details.filter(Boolean).map(card);
  document.getElementById("deployments").replaceChildren(...cards);
  drawErrors(list.policy_errors);
  const rolled = list.deployments.filter((d) => ["rolled_back", "aborted"].includes(d.status)).length;
  const more = names.length > MAX_DETAILED ? ` (first ${MAX_DETAILED} shown)` : "";
  document.getElementById("summary").textContent =
    `${plural(names.length, "deployment")}, ${rolled} rolled back, ${plural(list.policy_errors.length, "policy error")}${more}`;
  drawAudit(await getJSON("/api/v1/audit?limit=20"));
  document.getElementById("updated").textContent = `updated ${shortTime(new Date().toISOString())}`;
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
