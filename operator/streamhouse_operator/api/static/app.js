// StreamHouse console: one page, plain ES module, no build step and no third-party code.
// Every call goes to /api/v1 with the signed-in token; the server checks the caller's RBAC.

const $ = (selector) => document.querySelector(selector);
const TOKEN_KEY = "streamhouse.token";
const NAMESPACE_KEY = "streamhouse.namespace";
const PAGE_SIZE = 5;
const TAIL_COUNT = 20;

const state = {
  queries: new Map(), // name -> Query (as the API shows it)
  selected: null,
  watch: null, // AbortController of the event stream
  validation: 0, // sequence number of the latest validate call
  pages: [], // continuation tokens of the result pages before the current one
  page: null, // token of the current page
  next: null, // token of the next page
  key: null, // key lookup in progress (JSON text) or null
  tailTimer: null,
};

const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
const namespace = () => sessionStorage.getItem(NAMESPACE_KEY) || "default";
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  return { status: response.status, body: data };
}

function problemText(body) {
  const error = body && body.error;
  if (!error) return "request failed";
  return error.rendered || `${error.code}: ${error.message}`;
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function show(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// -- sign in ---------------------------------------------------------------------------

async function signIn() {
  const entered = $("#token").value.trim();
  const ns = $("#namespace").value.trim() || "default";
  sessionStorage.setItem(TOKEN_KEY, entered);
  sessionStorage.setItem(NAMESPACE_KEY, ns);
  const reply = await api("GET", `/queries?namespace=${encodeURIComponent(ns)}&limit=500`);
  if (reply.status !== 200) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("#sign-in-error").textContent = problemText(reply.body);
    return;
  }
  $("#sign-in-error").textContent = "";
  enterConsole(reply.body.items);
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.watch) state.watch.abort();
  stopTail();
  state.queries.clear();
  state.selected = null;
  $("#console").hidden = true;
  $("#sign-out").hidden = true;
  $("#sign-in").hidden = false;
  $("#who").textContent = "";
}

function enterConsole(items) {
  $("#sign-in").hidden = true;
  $("#console").hidden = false;
  $("#sign-out").hidden = false;
  $("#ns-name").textContent = namespace();
  $("#who").textContent = `namespace ${namespace()}`;
  state.queries.clear();
  for (const query of items) state.queries.set(query.name, query);
  renderList();
  watchQueries();
}

// -- the query list, live from the event stream ----------------------------------------

async function watchQueries() {
  if (state.watch) state.watch.abort();
  const controller = new AbortController();
  state.watch = controller;
  while (!controller.signal.aborted) {
    try {
      const response = await fetch(
        `/api/v1/events?namespace=${encodeURIComponent(namespace())}`,
        { headers: { Authorization: `Bearer ${token()}` }, signal: controller.signal },
      );
      if (response.status !== 200) {
        setLive(`events: HTTP ${response.status}`, false);
        await sleep(3000);
        continue;
      }
      setLive("live", true);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handleEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setLive("reconnecting", false);
    await sleep(1000);
  }
}

function setLive(text, live) {
  const badge = $("#live");
  badge.textContent = text;
  badge.className = live ? "badge live" : "badge";
}

function handleEvent(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) kind = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  if (!data.length) return;
  const payload = JSON.parse(data.join("\n"));
  if (kind === "query") state.queries.set(payload.name, payload);
  else if (kind === "deleted") state.queries.delete(payload.name);
  renderList();
  if (state.selected && (kind === "deleted" || payload.name === state.selected)) renderDetail();
}

function renderList() {
  const body = $("#queries tbody");
  body.replaceChildren();
  const names = [...state.queries.keys()].sort();
  for (const name of names) {
    const query = state.queries.get(name);
    const figures = query.figures || {};
    const row = element("tr");
    row.dataset.name = name;
    if (name === state.selected) row.classList.add("selected");
    const stateCell = element("td");
    stateCell.append(element("span", query.lifecycleState || "PENDING", `badge ${query.lifecycleState || ""}`));
    row.append(
      element("td", name),
      element("td", query.kind || ""),
      stateCell,
      element("td", `${query.readyReplicas ?? 0}/${query.spec?.parallelism ?? ""}`),
      element("td", figures.lag ?? ""),
      element("td", figures.inputRate ?? ""),
      element("td", figures.outputRate ?? ""),
      element("td", figures.deadLettered ?? ""),
    );
    row.addEventListener("click", () => select(name));
    body.append(row);
  }
}

// -- the SQL editor: validate as you type, mark the error at its line and column --------

function highlight(text, errors) {
  const pre = $("#sql-highlight");
  pre.replaceChildren();
  const lines = text.split("\n");
  const first = errors[0];
  if (!first || !first.line || !first.column || first.line > lines.length) {
    pre.textContent = text + "\n";
    return;
  }
  let offset = 0;
  for (let i = 0; i < first.line - 1; i++) offset += lines[i].length + 1;
  offset += Math.min(first.column - 1, lines[first.line - 1].length);
  // The marked token: the identifier or number at the position, else one character.
  const rest = text.slice(offset);
  const word = rest.match(/^[A-Za-z0-9_]+/);
  const length = word ? word[0].length : Math.min(1, rest.length);
  const mark = element("mark", text.slice(offset, offset + length) || " ", "sql-error");
  mark.dataset.line = String(first.line);
  mark.dataset.column = String(first.column);
  mark.dataset.code = first.code;
  mark.title = `${first.code}: ${first.message}`;
  pre.append(text.slice(0, offset), mark, text.slice(offset + length) + "\n");
}

let validateTimer = null;
function scheduleValidation() {
  clearTimeout(validateTimer);
  validateTimer = setTimeout(validate, 250);
}

async function validate() {
  const text = $("#sql").value;
  const sequence = ++state.validation;
  if (!text.trim()) {
    showErrors([], text, "");
    return;
  }
  const reply = await api("POST", "/validate", { sql: text });
  if (sequence !== state.validation) return; // an older answer
  if (reply.status !== 200) {
    showErrors([{ code: "API", message: problemText(reply.body) }], text, "");
    return;
  }
  const ok = reply.body.valid ? `valid ${reply.body.kind}: ${reply.body.summary}` : "";
  showErrors(reply.body.errors || [], text, ok);
}

function showErrors(errors, text, ok) {
  const list = $("#sql-errors");
  list.replaceChildren();
  for (const error of errors) {
    const where = error.line ? `${error.line}:${error.column}: ` : "";
    list.append(element("li", `${where}error[${error.code}]: ${error.message}`));
  }
  $("#sql-ok").textContent = ok;
  highlight(text, errors);
}

function syncScroll() {
  $("#sql-highlight").scrollTop = $("#sql").scrollTop;
}

// -- EXPLAIN ------------------------------------------------------------------------------

function planTree(node) {
  const item = element("li");
  item.append(element("span", node.operator, "operator"));
  const details = Array.isArray(node.details) ? node.details.join(" ") : show(node.details);
  if (details) item.append(" ", element("span", details, "details"));
  if (node.state && node.state.length) {
    item.append(" ", element("span", `state: ${node.state.map((s) => s.name).join(", ")}`, "details"));
  }
  if (node.inputs && node.inputs.length) {
    const children = element("ul");
    for (const input of node.inputs) children.append(planTree(input));
    item.append(children);
  }
  return item;
}

async function explain() {
  const reply = await api("POST", "/explain", { sql: $("#sql").value });
  const target = $("#explain-tree");
  target.replaceChildren();
  if (reply.status !== 200) {
    target.append(element("p", problemText(reply.body), "error-text"));
    return;
  }
  const tree = element("ul");
  tree.append(planTree(reply.body.plan));
  target.append(element("p", `${reply.body.kind} ${reply.body.name || ""}`), tree);
}

// -- create, and the selected query ------------------------------------------------------

async function create() {
  const body = {
    namespace: namespace(),
    name: $("#query-name").value.trim(),
    sql: $("#sql").value,
    parallelism: Number($("#query-parallelism").value || 1),
  };
  const reply = await api("POST", "/queries", body);
  if (reply.status !== 201) {
    $("#create-error").textContent = problemText(reply.body);
    if (reply.body && reply.body.errors) highlight(body.sql, reply.body.errors.filter((e) => e.line));
    return;
  }
  $("#create-error").textContent = "";
  state.queries.set(reply.body.name, reply.body);
  renderList();
  select(reply.body.name);
}

function select(name) {
  state.selected = name;
  state.pages = [];
  state.page = null;
  state.key = null;
  $("#detail-error").textContent = "";
  renderList();
  renderDetail(true);
}

function renderDetail(fresh = false) {
  const card = $("#detail-card");
  const query = state.selected && state.queries.get(state.selected);
  if (!query) {
    card.hidden = true;
    stopTail();
    return;
  }
  card.hidden = false;
  $("#detail-name").textContent = query.name;
  const badge = $("#detail-state");
  badge.textContent = query.lifecycleState || "PENDING";
  badge.className = `badge ${query.lifecycleState || ""}`;
  if (fresh) $("#scale-to").value = query.spec?.parallelism ?? 1;
  const conditions = $("#conditions");
  conditions.replaceChildren();
  for (const condition of query.conditions || []) {
    conditions.append(
      element("li", `${condition.type}=${condition.status} ${condition.reason}: ${condition.message || ""}`),
    );
  }
  const table = query.kind === "TABLE";
  $("#results").hidden = !table;
  $("#tail").hidden = table;
  if (fresh) {
    stopTail();
    if (table) loadResults();
    else startTail();
  }
}

async function change(patch) {
  const reply = await api("PATCH", `/queries/${namespace()}/${state.selected}`, patch);
  $("#detail-error").textContent = reply.status === 200 ? "" : problemText(reply.body);
  if (reply.status === 200) {
    state.queries.set(reply.body.name, reply.body);
    renderList();
    renderDetail();
  }
}

async function remove() {
  const name = state.selected;
  const reply = await api("DELETE", `/queries/${namespace()}/${name}`);
  if (reply.status !== 200) {
    $("#detail-error").textContent = problemText(reply.body);
    return;
  }
  $("#detail-error").textContent = `deleting ${name}`;
}

// -- TABLE results: pages and key lookups -----------------------------------------------

async function loadResults() {
  const base = `/queries/${namespace()}/${state.selected}/results`;
  let path = `${base}?limit=${PAGE_SIZE}`;
  if (state.key !== null) path += `&key=${encodeURIComponent(state.key)}`;
  if (state.page) path += `&continue=${encodeURIComponent(state.page)}`;
  const reply = await api("GET", path);
  const head = $("#result-rows thead");
  const body = $("#result-rows tbody");
  head.replaceChildren();
  body.replaceChildren();
  if (reply.status !== 200) {
    $("#page-info").textContent = problemText(reply.body);
    const results = $("#results");
    results.dataset.loads = String(Number(results.dataset.loads || 0) + 1);
    return;
  }
  const rows = reply.body.rows;
  const columns = [];
  for (const row of rows) for (const column of Object.keys(row.row)) if (!columns.includes(column)) columns.push(column);
  const header = element("tr");
  for (const column of columns) header.append(element("th", column));
  if (reply.body.windowed) header.append(element("th", "window"));
  head.append(header);
  for (const row of rows) {
    const line = element("tr");
    for (const column of columns) line.append(element("td", show(row.row[column])));
    if (reply.body.windowed) line.append(element("td", row.window ? `${row.window.start} – ${row.window.end}` : ""));
    body.append(line);
  }
  state.next = reply.body.continue || null;
  const results = $("#results");
  results.dataset.loads = String(Number(results.dataset.loads || 0) + 1); // for tests
  $("#page-info").textContent =
    `${rows.length} row(s), page ${state.pages.length + 1}, from ${reply.body.pods} pod(s)`;
  $("#next-page").disabled = !state.next;
  $("#prev-page").disabled = state.pages.length === 0;
}

function lookUp() {
  const text = $("#result-key").value.trim();
  if (!text) return showAll();
  try {
    JSON.parse(text);
    state.key = text;
  } catch {
    state.key = JSON.stringify(text); // a bare word is a string key
  }
  state.pages = [];
  state.page = null;
  loadResults();
}

function showAll() {
  state.key = null;
  state.pages = [];
  state.page = null;
  loadResults();
}

function nextPage() {
  if (!state.next) return;
  state.pages.push(state.page);
  state.page = state.next;
  loadResults();
}

function previousPage() {
  if (!state.pages.length) return;
  state.page = state.pages.pop();
  loadResults();
}

// -- STREAM live tail ---------------------------------------------------------------------

function startTail() {
  stopTail();
  $("#tail-count").textContent = String(TAIL_COUNT);
  const poll = async () => {
    if (!state.selected) return;
    const reply = await api("GET", `/queries/${namespace()}/${state.selected}/tail?n=${TAIL_COUNT}`);
    const body = $("#tail-rows tbody");
    body.replaceChildren();
    if (reply.status !== 200) {
      const line = element("tr");
      line.append(element("td", problemText(reply.body)));
      body.append(line);
    } else {
      for (const record of reply.body.records.slice().reverse()) {
        const line = element("tr");
        line.append(
          element("td", record.partition),
          element("td", record.offset),
          element("td", record.timestamp ? new Date(record.timestamp).toISOString() : ""),
          element("td", show(record.key)),
          element("td", show(record.value)),
        );
        body.append(line);
      }
    }
    state.tailTimer = setTimeout(poll, 2000);
  };
  poll();
}

function stopTail() {
  clearTimeout(state.tailTimer);
  state.tailTimer = null;
}

// -- wiring -------------------------------------------------------------------------------

function wire() {
  $("#sign-in-button").addEventListener("click", signIn);
  $("#token").addEventListener("keydown", (event) => event.key === "Enter" && signIn());
  $("#sign-out").addEventListener("click", signOut);
  $("#sql").addEventListener("input", () => {
    highlight($("#sql").value, []);
    scheduleValidation();
  });
  $("#sql").addEventListener("scroll", syncScroll);
  $("#explain-button").addEventListener("click", explain);
  $("#create-button").addEventListener("click", create);
  $("#suspend-button").addEventListener("click", () => change({ state: "suspended" }));
  $("#resume-button").addEventListener("click", () => change({ state: "running" }));
  $("#scale-button").addEventListener("click", () => change({ parallelism: Number($("#scale-to").value) }));
  $("#delete-button").addEventListener("click", remove);
  $("#lookup-button").addEventListener("click", lookUp);
  $("#all-button").addEventListener("click", showAll);
  $("#next-page").addEventListener("click", nextPage);
  $("#prev-page").addEventListener("click", previousPage);
  $("#namespace").value = namespace();
  if (token()) {
    // Still signed in in this tab: check the token again before showing anything.
    $("#token").value = token();
    signIn();
  }
}

wire();
