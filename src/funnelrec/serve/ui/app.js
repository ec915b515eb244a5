// funnelrec funnel inspector: plain JS over the public API (no build step, no network
// beyond the server that serves this page).
"use strict";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const titles = new Map();
let current = null;      // user id shown
let previous = [];       // slate item ids before the last click

async function api(path, options = {}) {
  const r = await fetch(path, { ...options, headers: { ...headers, ...(options.headers || {}) } });
  const body = await r.json();
  if (!r.ok) throw new Error(`${r.status} ${body.message || body.error || ""}`);
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const label = (id) => (titles.get(String(id)) ? `${titles.get(String(id))} (${id})` : String(id));
const fmt = (x) => (x === undefined || x === null ? "–" : Number(x).toFixed(4));

async function fetchTitles(ids) {
  const missing = [...new Set(ids.map(String))].filter((i) => !titles.has(i));
  for (let i = 0; i < missing.length; i += 1000) {
    const { items } = await api("/items/lookup", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ item_ids: missing.slice(i, i + 1000) }),
    });
    items.forEach((it) => titles.set(String(it.item_id), it.title || ""));
  }
}

function traceIds(trace) {
  const ids = [];
  Object.values(trace.channels).forEach((list) => list.forEach((e) => ids.push(e.item)));
  trace.merged.forEach((e) => ids.push(e.item));
  trace.rank.forEach((e) => ids.push(e.item));
  trace.slate.forEach((e) => ids.push(e.item));
  trace.rerank.forEach((s) => ids.push(...s.removed, ...s.inserted, ...s.moved.map((m) => m.item)));
  return ids;
}

function renderHistory(history) {
  $("history").replaceChildren(
    ...history.items.map((h) =>
      el("li", { "data-item": h.item_id, class: h.source },
        h.title ? `${h.title} (${h.item_id})` : String(h.item_id),
        el("span", { class: "tag" }, h.source))),
  );
  if (!history.items.length) $("history").append(el("li", {}, "no history (cold start)"));
}

function renderChannels(trace) {
  $("channels").replaceChildren(
    ...Object.entries(trace.channels).map(([name, list]) =>
      el("div", { class: "channel", "data-channel": name },
        el("h3", {}, `${name} (${list.length})`),
        el("ol", {}, ...list.slice(0, 10).map((e) =>
          el("li", { "data-item": e.item }, label(e.item), el("span", { class: "score" }, fmt(e.score))))))),
  );
}

function table(node, header, rows) {
  node.replaceChildren(
    el("tr", {}, ...header.map((h) => el("th", {}, h))),
    ...rows.map((r) => el("tr", {}, ...r.map((v) =>
      typeof v === "number" ? el("td", { class: "num" }, fmt(v)) : el("td", {}, v)))),
  );
}

function renderScores(trace) {
  table($("merged"), ["item", "fused score", "found by (channel: rank)"],
    trace.merged.slice(0, 15).map((e) => [label(e.item), e.score,
      Object.entries(e.found_by).map(([c, r]) => `${c}: ${r + 1}`).join(", ")]));
  const pre = new Map(trace.prerank.map((e) => [String(e.item), e.score]));
  table($("scores"), ["item", "pre-rank", "rank"],
    trace.rank.slice(0, 15).map((e) => [label(e.item), pre.get(String(e.item)) ?? "–", e.score]));
  $("rerank").replaceChildren(...trace.rerank.map((s) =>
    el("p", { "data-reranker": s.reranker }, el("b", {}, s.reranker), ": ",
      `removed ${s.removed.length ? s.removed.map(label).join(", ") : "none"}; `,
      `inserted ${s.inserted.length ? s.inserted.map(label).join(", ") : "none"}; `,
      `moved ${s.moved.length ? s.moved.map((m) => `${label(m.item)} ${m.from}→${m.to}`).join(", ") : "none"}`)));
}

function renderSlate(body) {
  const reasons = new Map(body.trace.slate.map((e) => [String(e.item), e]));
  const before = new Set(previous.map(String));
  $("slate").replaceChildren(...body.items.map((it) => {
    const t = reasons.get(String(it.item_id)) || {};
    const fresh = previous.length && !before.has(String(it.item_id));
    const button = el("button", { type: "button", class: "click-btn", title: "send a click event" }, "click");
    button.addEventListener("click", () => sendClick(it.item_id));
    return el("li", { class: `slate-item${fresh ? " new" : ""}`, "data-item": it.item_id },
      label(it.item_id), el("span", { class: "score" }, fmt(it.score)),
      ...it.channels.map((c) => el("span", { class: "tag" }, c)),
      t.reason ? el("span", { class: "reason" }, t.reason) : "", button);
  }));
}

async function show(userId) {
  if (!userId) return;
  const k = Math.max(1, Number($("k-input").value) || 10);
  $("status").textContent = `loading ${userId}…`;
  try {
    const q = new URLSearchParams({ user_id: userId, k: String(k), explain: "true" });
    const [body, history] = await Promise.all([
      api(`/recommend?${q}`),
      api(`/history?${new URLSearchParams({ user_id: userId, limit: "15" })}`),
    ]);
    await fetchTitles(traceIds(body.trace));
    if (current !== userId) previous = [];
    current = userId;
    renderHistory(history);
    renderChannels(body.trace);
    renderScores(body.trace);
    renderSlate(body);
    table($("timings"), ["stage", "ms"], Object.entries(body.timings_ms).map(([s, v]) => [s, v]));
    const note = body.known_user ? "" : " (unknown user: cold start)";
    $("status").textContent = `${userId}${note}: ${body.items.length} items, model generation ${body.generation}`;
    document.body.dataset.user = userId;
    document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
  } catch (err) {
    $("status").textContent = `error: ${err.message}`;
    $("status").className = "error";
  }
}

async function sendClick(itemId) {
  previous = [...$("slate").querySelectorAll(".slate-item")].map((li) => li.dataset.item);
  $("status").textContent = `sending a click on ${label(itemId)}…`;
  await api("/events", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ events: [{ user_id: current, item_id: itemId, type: "click" }] }),
  });
  await show(current);
  const now = [...$("slate").querySelectorAll(".slate-item")].map((li) => li.dataset.item);
  const changed = now.filter((i) => !previous.includes(i)).length;
  $("status").textContent += ` · clicked ${label(itemId)}: ${changed} new item(s) in the slate`;
}

async function init() {
  $("user-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    show($("user-input").value.trim() || $("user-select").value);
  });
  $("user-select").addEventListener("change", () => {
    $("user-input").value = "";
    show($("user-select").value);
  });
  try {
    const { users } = await api("/users?limit=50");
    users.forEach((u) => {
      $("user-select").append(el("option", { value: String(u.user_id) }, `${u.user_id} (${u.n_interactions})`));
      $("user-list").append(el("option", { value: String(u.user_id) }));
    });
    document.body.dataset.ready = "1";
  } catch (err) {
    $("status").textContent = `error: ${err.message}`;
  }
}

init();
