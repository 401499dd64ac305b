// The dashboard: reads the proxy's APIs and draws them. Data is always written with
// textContent (session messages and memories are untrusted text), never as HTML.
"use strict";

const RANGES = { "1h": "5m", "24h": "1h", "7d": "1h" };
const COLORS = ["#2563eb", "#db2777", "#16a34a", "#ea580c", "#7c3aed", "#0891b2", "#ca8a04", "#64748b"];
const FAILED_COLOR = "#dc2626";
const state = { range: "24h", charts: {}, key: sessionStorage.getItem("memory-proxy-key") || "" };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child ?? "")));
  }
  return node;
}

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.key) headers.authorization = "Bearer " + state.key;
  const answer = await fetch(path, { ...options, headers });
  if (answer.status === 401) askForKey();
  const body = answer.headers.get("content-type")?.includes("json") ? await answer.json() : null;
  if (!answer.ok) throw new Error(body?.error?.message || `${path}: HTTP ${answer.status}`);
  return body;
}

// Any call answered 401 (the proxy has client keys): the header asks for one.
function askForKey() {
  document.getElementById("key-form").hidden = false;
  const error = new Error("This proxy needs a client key: type it in the header.");
  showError(error);
  throw error;
}

function showError(error) {
  const box = document.getElementById("error");
  box.hidden = !error;
  box.textContent = error ? String(error.message || error) : "";
}

const number = (n) => (n == null ? "–" : Number(n).toLocaleString());
const money = (n) => (n == null ? "–" : "$" + Number(n).toFixed(n >= 1 ? 2 : 4));
const percent = (n) => (n == null ? "–" : (n * 100).toFixed(1) + "%");
const millis = (n) => (n == null ? "–" : Number(n).toFixed(0) + " ms");
const when = (t) => (t == null ? "–" : new Date(t * 1000).toLocaleString());
const score = (f) => (f && f.count ? `${f.mean >= 0 ? "+" : ""}${f.mean.toFixed(2)} (${f.count})` : "–");

function table(id, columns, rows, emptyText, onRow) {
  const node = document.getElementById(id);
  node.replaceChildren();
  node.append(el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", { class: c.num ? "num" : "" }, c.title)))));
  const body = el("tbody");
  if (!rows.length) {
    body.append(el("tr", {}, el("td", { class: "empty-row", colspan: columns.length }, emptyText)));
  }
  for (const row of rows) {
    const line = el("tr", onRow ? { class: "clickable" } : {});
    for (const column of columns) {
      const value = column.value(row);
      line.append(el("td", { class: column.num ? "num" : "" }, value));
    }
    if (onRow) line.addEventListener("click", () => onRow(row, line));
    body.append(line);
  }
  node.append(body);
}

const QUALITY_COLUMNS = [
  { title: "Requests", num: true, value: (r) => number(r.requests) },
  { title: "Tokens", num: true, value: (r) => number(r.total_tokens) },
  { title: "Cost", num: true, value: (r) => money(r.cost) },
  { title: "Mean first byte", num: true, value: (r) => millis(r.mean_first_byte_ms) },
  { title: "Errors", num: true, value: (r) => percent(r.error_rate) },
  { title: "Truncated", num: true, value: (r) => percent(r.truncation_rate) },
  { title: "Refusals", num: true, value: (r) => number(r.refusals) },
  { title: "Disconnects", num: true, value: (r) => number(r.client_disconnects) },
  { title: "Feedback", num: true, value: (r) => score(r.feedback) },
];

async function loadOverview() {
  const since = state.range;
  const bucket = RANGES[since];
  const [byModel, seriesModel, seriesClient, byTool] = await Promise.all([
    api(`/v1/usage?group_by=model&since=${since}`),
    api(`/v1/usage/series?bucket=${bucket}&since=${since}&group_by=model`),
    api(`/v1/usage/series?bucket=${bucket}&since=${since}&group_by=client`),
    api(`/v1/usage?group_by=tool&since=${since}`),
  ]);
  const total = byModel.total;
  document.getElementById("overview-empty").hidden = total.requests > 0;
  const cards = [
    ["Requests", number(total.requests), "requests"],
    ["Tokens", number(total.total_tokens), "tokens"],
    ["Cost", money(total.cost), "cost"],
    ["Error rate", percent(total.error_rate), "error-rate"],
    ["Truncated", percent(total.truncation_rate), "truncated"],
    ["Feedback", score(total.feedback), "feedback"],
  ];
  document.getElementById("cards").replaceChildren(
    ...cards.map(([label, value, id]) =>
      el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value", id: "card-" + id }, value)),
    ),
  );
  table("models-table", [{ title: "Model", value: (r) => r.model }, ...QUALITY_COLUMNS], byModel.data,
    "No model has been called in this range.");
  table("tools-table", [
    { title: "Tool", value: (r) => r.tool },
    { title: "Calls", num: true, value: (r) => number(r.requests) },
    { title: "Memories found, listed or stored", num: true, value: (r) => number(r.hits) },
    { title: "Mean time", num: true, value: (r) => (r.mean_total_ms == null ? "–" : r.mean_total_ms.toFixed(1) + " ms") },
    { title: "Errors", num: true, value: (r) => percent(r.error_rate) },
    { title: "Users", value: (r) => r.users.join(", ") },
    { title: "Last called", value: (r) => when(r.last_seen) },
  ], byTool.data, "No agent has called a memory tool in this range (see README: Memory tools for agents).");
  const times = seriesModel.times;
  const answering = seriesModel.groups.filter(answeredOnce);
  drawChart("chart-models", times, [
    ...answering.map((g) => [g.model, g.requests.map((n, i) => n - g.errors[i])]),
    ...(sum(seriesModel.total.errors) ? [[FAILED, seriesModel.total.errors]] : []),
  ], "requests");
  drawChart("chart-clients", times, seriesClient.groups.map((g) => [g.client, g.requests]), "requests");
  drawChart("chart-cost", times, answering.map((g) => [g.model, g.cost]), "USD");
  const latency = seriesModel.latency;
  drawChart("chart-latency", times, [
    ["first byte p50", latency.first_byte_p50], ["first byte p95", latency.first_byte_p95],
    ["total p50", latency.total_p50], ["total p95", latency.total_p95],
  ], "ms");
}

// A model gets a line of its own once it has answered in the range; every failed request
// (a mistyped model name, a missing key) is counted in one line, so that a typo does not
// stay on the charts as a model of its own.
const FAILED = "failed requests";
const sum = (values) => values.reduce((total, n) => total + n, 0);
const answeredOnce = (group) => sum(group.requests) > sum(group.errors);

function drawChart(id, times, lines, unit) {
  const box = document.getElementById(id);
  const width = Math.max(box.clientWidth, 300);
  const series = [{}, ...lines.map(([label], i) => ({
    label: label || "none", stroke: label === FAILED ? FAILED_COLOR : COLORS[i % COLORS.length], width: 2, spanGaps: true,
    points: { show: times.length < 40 },
  }))];
  const data = [times, ...lines.map(([, values]) => values)];
  if (!lines.length) {
    series.push({ label: "no data", stroke: "#cbd5e1" });
    data.push(times.map(() => 0));
  }
  state.charts[id]?.destroy();
  box.replaceChildren();
  state.charts[id] = new uPlot({
    width, height: 200, series, legend: { show: true },
    axes: [{}, { label: unit, size: 60, values: (u, ticks) => ticks.map((v) => +v.toPrecision(3)) }], scales: { y: { range: (u, min, max) => [0, max > 0 ? max * 1.1 : 1] } },
  }, data, box);
}

async function loadClients() {
  const byClient = await api("/v1/usage?group_by=client");
  table("clients-table", [
    { title: "Client", value: (r) => r.client },
    { title: "User ids", value: (r) => r.users.join(", ") },
    { title: "Last seen", value: (r) => when(r.last_seen) },
    ...QUALITY_COLUMNS,
  ], byClient.data, "No client has sent a request yet: point one at http://127.0.0.1:8764/v1.");
}

async function loadSessions() {
  const sessions = await api("/v1/sessions?limit=200");
  table("sessions-table", [
    { title: "Session", value: (s) => s.id },
    { title: "User", value: (s) => s.user_id },
    { title: "Messages", num: true, value: (s) => number(s.message_count) },
    { title: "Updated", value: (s) => when(s.updated) },
  ], sessions.data, "No sessions yet: send a request with an x-session-id header.", openSession);
}

async function openSession(session, line) {
  document.querySelectorAll("#sessions-table tr.selected").forEach((n) => n.classList.remove("selected"));
  line.classList.add("selected");
  const where = `/v1/sessions/${encodeURIComponent(session.id)}?user_id=${encodeURIComponent(session.user_id)}`;
  const full = await api(where);
  const remove = el("button", { class: "danger", id: "delete-session", onclick: async () => {
    if (!confirm(`Delete session ${session.id}?`)) return;
    await api(where, { method: "DELETE" }).catch(showError);
    document.getElementById("conversation").replaceChildren(el("p", { class: "hint" }, `Session ${session.id} deleted.`));
    await loadSessions().catch(showError);
  } }, "Delete session");
  const messages = full.messages.map((m) => el("div", { class: "message " + m.role },
    el("div", { class: "role" }, m.role + (m.partial ? " (partial)" : "") + (m.private ? " (private model)" : "")),
    textOf(m.content)));
  document.getElementById("conversation").replaceChildren(
    el("div", { class: "toolbar" }, el("strong", {}, `${session.id} · ${session.user_id}`), remove), ...messages);
}

function textOf(content) {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p?.text === "string" ? p.text : "")).join("");
  return content == null ? "" : JSON.stringify(content);
}

async function loadMemories(event) {
  event?.preventDefault();
  // Every user's memories (each client is mapped to a user of its own) unless narrowed.
  const params = new URLSearchParams();
  for (const [id, name] of [["memory-query", "q"], ["memory-user", "user_id"], ["memory-project", "project"]]) {
    const value = document.getElementById(id).value.trim();
    if (value) params.set(name, value);
  }
  const [memories] = await Promise.all([api("/v1/memories?" + params), loadRecallSummary()]);
  table("memories-table", [
    { title: "User", value: (m) => m.user_id },
    { title: "Client", value: (m) => m.client },
    { title: "Project", value: (m) => m.project || "(general)" },
    // A private model's memory is recalled into private models' requests only.
    { title: "Private", value: (m) => (m.private ? "private" : "") },
    { title: "Memory", value: (m) => m.text },
    { title: "Created", value: (m) => when(m.created_at) },
    { title: "", value: (m) => el("button", { class: "danger", onclick: async () => {
      await api(`/v1/memories/${encodeURIComponent(m.id)}`, { method: "DELETE" }).catch(showError);
      await loadMemories().catch(showError);
    } }, "Forget") },
  ], memories.data || [], params.size ? "No memories match." : "No memories yet.");
}

// What recall put into requests over the last week, from the usage records.
const RECALL_DAYS = 7;
async function loadRecallSummary() {
  const line = document.getElementById("recall-summary");
  const usage = await api(`/v1/usage?since=${RECALL_DAYS}d`).catch(() => null);
  const recall = usage?.total?.recall;
  line.hidden = !recall;
  if (!recall) return;
  line.textContent = recall.questions
    ? `Recall, last ${RECALL_DAYS} days: ${percent(recall.block_share)} of ` +
      `${number(recall.questions)} questions given a block (${number(recall.blocks)}, ` +
      `${(recall.blocks / RECALL_DAYS).toFixed(1)} a day), ` +
      `${number(Math.round(recall.mean_tokens ?? 0))} tokens each on average.`
    : `Recall, last ${RECALL_DAYS} days: no question searched yet.`;
}

const liveRows = [];
function renderLive() {
  table("live-table", [
    { title: "Time", value: (r) => new Date(r.time * 1000).toLocaleTimeString() },
    { title: "User", value: (r) => r.user_id },
    { title: "Client", value: (r) => r.client },
    // A memory tool call (MCP) has no model: its tool and what it found instead.
    { title: "Model", value: (r) => (r.tool ? `tool ${r.tool} (${number(r.hits)} memories)` : r.model ?? "–") },
    { title: "Status", num: true, value: (r) => r.status },
    { title: "Finish", value: (r) => r.finish_reason ?? "–" },
    { title: "First byte", num: true, value: (r) => millis(r.first_byte_ms) },
    { title: "Total", num: true, value: (r) => millis(r.total_ms) },
    { title: "Tokens", num: true, value: (r) => number((r.prompt_tokens || 0) + (r.completion_tokens || 0)) },
    { title: "Cost", num: true, value: (r) => money(r.cost) },
    { title: "Rate", value: rateButtons },
  ], liveRows, "Waiting for requests… send one to http://127.0.0.1:8764/v1 and it appears here.");
}

function rateButtons(record) {
  if (record.rated != null) return el("span", { class: record.rated > 0 ? "good" : "bad" }, record.rated > 0 ? "rated good" : "rated bad");
  const rate = (value) => async () => {
    await api("/v1/feedback", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ request_id: record.request_id, score: value }) }).then(() => {
      record.rated = value;
      renderLive();
    }).catch(showError);
  };
  return el("span", {}, el("button", { class: "rate-up", onclick: rate(1) }, "Good"), " ",
    el("button", { class: "rate-down", onclick: rate(-1) }, "Bad"));
}

async function followLive() {
  // fetch, not EventSource: it can send the client key.
  const headers = state.key ? { authorization: "Bearer " + state.key } : {};
  const answer = await fetch("/v1/live", { headers });
  if (answer.status === 401) askForKey();
  if (!answer.ok) throw new Error(`/v1/live: HTTP ${answer.status}`);
  const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!data) continue;
      const payload = JSON.parse(data);
      if (name === "state") document.getElementById("in-flight").textContent = `in flight: ${payload.in_flight}`;
      if (name === "request" && !liveRows.some((row) => row.request_id === payload.request_id)) {
        // The latest requests come first (oldest first), then each new one as it ends.
        liveRows.unshift(payload);
        liveRows.length = Math.min(liveRows.length, 100);
        renderLive();
      }
    }
  }
}

async function checkHealth() {
  const pill = document.getElementById("health");
  try {
    const answer = await fetch("/health");
    const body = await answer.json();
    pill.textContent = answer.ok ? "LiteLLM ready" : "LiteLLM down: " + (body.reason || "");
    pill.className = "pill " + (answer.ok ? "ok" : "down");
  } catch {
    pill.textContent = "proxy unreachable";
    pill.className = "pill down";
  }
}

async function detectMemories() {
  // Shown once the proxy has long-term memory: its list answers with a `data` array.
  const answer = await fetch("/v1/memories?limit=1", { headers: state.key ? { authorization: "Bearer " + state.key } : {} });
  if (answer.status === 401) askForKey();
  const body = answer.ok ? await answer.json().catch(() => null) : null;
  document.querySelector('[data-tab="memories"]').hidden = !Array.isArray(body?.data);
}

const LOADERS = { overview: loadOverview, clients: loadClients, sessions: loadSessions, memories: loadMemories, live: async () => renderLive() };

// Each tab has a URL (#memories opens Memories), and the browser's history follows the
// tabs: a click sets the hash, and showing a tab answers the hash, so Back goes back.
function tabInUrl() {
  const name = location.hash.slice(1);
  return Object.hasOwn(LOADERS, name) ? name : "overview";
}

function showTab(name) {
  document.querySelectorAll("#tabs button").forEach((b) => b.classList.toggle("active", b.dataset.tab === name));
  document.querySelectorAll("main .panel").forEach((p) => { p.hidden = p.id !== name; });
  showError(null);
  return LOADERS[name]().catch(showError);
}

// What needs the client key, when one is configured: asked again once it is typed.
function connect() {
  detectMemories().catch(() => {});
  followLive().catch(() => {});
  return showTab(tabInUrl());
}

function start() {
  document.querySelectorAll("#tabs button").forEach((b) => b.addEventListener("click", () => {
    if (tabInUrl() === b.dataset.tab) showTab(b.dataset.tab);
    else location.hash = b.dataset.tab;
  }));
  window.addEventListener("hashchange", () => showTab(tabInUrl()));
  document.querySelectorAll("[data-range]").forEach((b) => b.addEventListener("click", () => {
    state.range = b.dataset.range;
    document.querySelectorAll("[data-range]").forEach((o) => o.classList.toggle("active", o === b));
    loadOverview().catch(showError);
  }));
  document.getElementById("memory-search").addEventListener("submit", (e) => loadMemories(e).catch(showError));
  document.getElementById("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = document.getElementById("key").value;
    sessionStorage.setItem("memory-proxy-key", state.key);
    document.getElementById("key-form").hidden = true;
    connect();
  });
  checkHealth();
  setInterval(checkHealth, 10000);
  connect().then(() => {
    if (tabInUrl() === "overview") performance.mark("charts-drawn");
    document.body.dataset.rendered = "true";
  });
}

start();
