// fargo demo page: call the API routes on this origin, tally which task answered and
// measure latency; in the twin, draw the architecture's dashboard from the twin's console
// (its URL is at /console.json; on AWS there is none and only the request part shows).
"use strict";

const VIA = ["/api/private", "/api/private-with-alb"];
const SVG = "http://www.w3.org/2000/svg";
const tally = new Map(); // task id -> {"/api/private": n, "/api/private-with-alb": n}
const series = new Map(); // route -> {from, calls, ok, latency: {min, p50, p95, max}}
let consoleUrl = null;

// -- small helpers ---------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function percentile(sorted, fraction) {
  return sorted[Math.max(1, Math.ceil(fraction * sorted.length)) - 1];
}

function statistics(latencies) {
  if (latencies.length === 0) return null;
  const sorted = [...latencies].sort((a, b) => a - b);
  return { min: sorted[0], p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), max: sorted[sorted.length - 1] };
}

function ms(value) {
  return value === undefined || value === null ? "–" : `${Number(value).toFixed(1)} ms`;
}

async function consoleGet(path) {
  const response = await fetch(consoleUrl + path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) {
    const error = new Error(body.error || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function unavailable(target, error) {
  const said = error.message.charAt(0).toUpperCase() + error.message.slice(1);
  let text = error.status === 404 ? `${said}.` : `Could not load: ${said}`;
  if (error instanceof TypeError) { // fetch itself failed: nothing answers there
    text = `The twin's console at ${consoleUrl} does not answer: is the twin still up? (\`fargo status\`)`;
  }
  target.replaceChildren(el("p", { class: "unavailable" }, text));
}

// -- the request part ----------------------------------------------------------------

function rowFor(route) {
  return document.querySelector(`#routes tr[data-route="${route}"]`);
}

function show(route, status, latency, text, ok) {
  const row = rowFor(route);
  const cell = row.querySelector(".status");
  cell.textContent = status;
  cell.className = "status " + (ok ? "ok" : "error");
  row.querySelector(".latency").textContent = latency === null ? "" : ms(latency);
  row.querySelector(".body").textContent = text;
}

function count(route, taskId, times = 1) {
  if (!VIA.includes(route)) return;
  const counts = tally.get(taskId) || Object.fromEntries(VIA.map((via) => [via, 0]));
  counts[route] += times;
  tally.set(taskId, counts);
}

function renderTally() {
  const body = document.querySelector("#tally tbody");
  body.replaceChildren();
  if (tally.size === 0) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: 4 }, "No answers yet.")));
    return;
  }
  for (const [taskId, counts] of [...tally.entries()].sort()) {
    const total = VIA.reduce((sum, via) => sum + counts[via], 0);
    body.append(el("tr", {}, ...[taskId, ...VIA.map((via) => counts[via]), total].map((v) => el("td", {}, v))));
  }
}

function renderStats() {
  const body = document.querySelector("#stats tbody");
  body.replaceChildren();
  if (series.size === 0) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: 8 }, "No series yet: call a route 20 times.")));
    return;
  }
  for (const [route, s] of [...series.entries()].sort()) {
    const l = s.latency || {};
    body.append(el("tr", { "data-route": route },
      el("td", {}, el("code", {}, route)), el("td", {}, s.from), el("td", {}, s.calls), el("td", {}, s.ok),
      el("td", {}, ms(l.min)), el("td", {}, ms(l.p50)), el("td", {}, ms(l.p95)), el("td", {}, ms(l.max))));
  }
}

// What a failed answer means, in words: the console knows which service lacks tasks.
async function explainFailure(route, status, text, html) {
  let why = html ? `the load balancer answered ${status}` : `${status}: ${text.slice(0, 200)}`;
  if (consoleUrl) {
    try {
      const answer = await consoleGet(`/api/explain?route=${encodeURIComponent(route)}`);
      if (answer.explanation) why = `${answer.explanation} (${status})`;
    } catch (error) {
      // the explanation is a bonus: keep the plain status
    }
  } else if (status.startsWith("50")) {
    why += " — a service behind it has no healthy task";
  }
  return why;
}

async function call(route) {
  const started = performance.now();
  try {
    const response = await fetch(route, { cache: "no-store" });
    const text = (await response.text()).trim();
    const latency = performance.now() - started;
    const status = `${response.status} ${response.statusText}`.trim();
    if (response.ok) {
      show(route, status, latency, text, true);
      const match = /^TaskId: (\S+)/.exec(text);
      if (match) count(route, match[1]);
    } else {
      const html = (response.headers.get("content-type") || "").includes("html") || text.startsWith("<");
      show(route, status, latency, await explainFailure(route, status, text, html), false);
    }
    return { ok: response.ok, latency };
  } catch (error) {
    show(route, "network error", performance.now() - started, String(error), false);
    return { ok: false, latency: null };
  }
}

function busy(route, on) {
  rowFor(route).querySelectorAll("button").forEach((button) => { button.disabled = on; });
}

async function callTimes(route, times) {
  busy(route, true);
  const latencies = [];
  let ok = 0;
  try {
    for (let i = 0; i < times; i += 1) {
      const answer = await call(route); // one at a time, so each latency is a single request's
      if (answer.ok) ok += 1;
      if (answer.latency !== null) latencies.push(answer.latency);
      renderTally();
    }
  } finally {
    busy(route, false);
  }
  if (times > 1) {
    series.set(route, { from: "this browser", calls: times, ok, latency: statistics(latencies) });
    renderStats();
  }
}

async function burst(route, countWanted) {
  busy(route, true);
  try {
    const response = await fetch(consoleUrl + "/api/burst", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ route, count: countWanted }),
    });
    const result = await response.json();
    if (!response.ok) {
      show(route, `burst refused (${response.status})`, null, result.error || "", false);
      return;
    }
    for (const [taskId, n] of Object.entries(result.task_ids)) count(route, taskId, n);
    const statuses = Object.entries(result.statuses).map(([code, n]) => `${n} × ${code}`).join(", ");
    const tasks = Object.keys(result.task_ids).length;
    const answers = tasks ? `${tasks} distinct tasks answered` : `answers: ${Object.keys(result.answers).join(", ")}`;
    const text = result.failed ? result.explanation || result.errors[0] || "requests failed" : `${statuses}; ${answers}`;
    show(route, `burst: ${result.ok}/${result.count} OK`, result.latency_ms ? result.latency_ms.p50 : null, text, result.failed === 0);
    series.set(route, { from: "the twin (burst)", calls: result.count, ok: result.ok, latency: result.latency_ms });
    renderTally();
    renderStats();
  } catch (error) {
    show(route, "burst failed", null, `the console did not answer: ${error}`, false);
  } finally {
    busy(route, false);
  }
}

// -- the architecture diagram ----------------------------------------------------------

const TASK_CLASS = { HEALTHY: "healthy", UNHEALTHY: "unhealthy", UNKNOWN: "starting" };

function taskClass(task) {
  if (task.desired_status === "STOPPED" || task.last_status === "STOPPED") return "unhealthy";
  const targets = Object.values(task.target_health);
  if (targets.some((state) => state === "unhealthy" || state === "draining")) return "unhealthy";
  if (task.health === "UNHEALTHY") return "unhealthy";
  if (targets.length && targets.every((state) => state === "healthy")) return "healthy";
  return TASK_CLASS[task.health] || "starting";
}

function box(group, x, y, w, h, cls, label, sub) {
  group.append(svg("rect", { x, y, width: w, height: h, rx: 6, class: cls }));
  if (label) group.append(svg("text", { x: x + 8, y: y + 16, class: "label" }, label));
  if (sub) group.append(svg("text", { x: x + 8, y: y + 30, class: "sub" }, sub));
}

// A load balancer's listeners and rules, one line each (the diagram's tooltip).
function listenerRules(lb) {
  return lb.listeners.flatMap((l) => [
    `${l.protocol} ${l.port}${l.url ? ` (${l.url})` : ""}`,
    ...l.rules.map((r) => `  rule ${r.priority}: ${r.conditions.join(" and ")} → ${r.action}`),
    `  default → ${l.default_action}`,
  ]).join("\n");
}

function drawArchitecture(arch) {
  const zones = arch.vpc.availability_zones;
  const internal = arch.load_balancers.filter((lb) => lb.scheme === "internal");
  const facing = arch.load_balancers.filter((lb) => lb.scheme !== "internal");
  const W = 1000, side = arch.discovery ? 270 : 0;
  const vpcX = 10, vpcW = W - 20 - side, colW = (vpcW - 20) / zones.length;
  const pubY = 104, pubH = 66 + 44 * facing.length;
  const privY = pubY + pubH + 22;
  const bandH = 52, lbH = 46;
  const privH = 30 + lbH * internal.length + bandH * arch.services.length;
  const H = privY + privH + 20;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": `architecture of ${arch.name}` });
  root.append(svg("title", {}, `${arch.name}: VPC ${arch.vpc.cidr}, ${zones.length} Availability Zones`));
  const g = svg("g");
  root.append(g);
  // the internet
  box(g, W / 2 - side / 2 - 90, 8, 180, 30, "internet", "Internet (clients)");
  g.append(svg("line", { x1: W / 2 - side / 2, y1: 38, x2: W / 2 - side / 2, y2: pubY + 30, class: "edge" }));
  // the VPC and its zones
  box(g, vpcX, 50, vpcW, H - 58, "vpc", `VPC ${arch.vpc.cidr} (${arch.region}, ${arch.network_mode} mode)`);
  zones.forEach((zone, i) => {
    const x = vpcX + 10 + i * colW;
    g.append(svg("rect", { x, y: 72, width: colW - 8, height: H - 86, rx: 6, class: "zone" }));
    g.append(svg("text", { x: x + 8, y: 88, class: "sub" }, zone));
  });
  const subnet = (kind, i) => arch.subnets.find((s) => s.kind === kind && s.availability_zone === zones[i]);
  zones.forEach((zone, i) => {
    const x = vpcX + 14 + i * colW;
    const pub = subnet("public", i), priv = subnet("private", i);
    box(g, x, pubY - 10, colW - 16, pubH, "subnet public", pub ? `public subnet ${pub.cidr}` : "public subnet");
    box(g, x, privY - 10, colW - 16, privH, "subnet private", priv ? `private subnet ${priv.cidr}` : "private subnet");
    const nat = arch.nat_gateways.find((n) => n.availability_zone === zone);
    if (nat) {
      const node = svg("g", { "data-nat": nat.name });
      box(node, x + colW - 140, pubY - 6, 116, 22, "nat", "NAT gateway");
      g.append(node);
    }
  });
  const spanX = vpcX + 24, spanW = zones.length * colW - 36;
  facing.forEach((lb, i) => {
    const node = svg("g", { "data-load-balancer": lb.name, class: "lb" });
    node.append(svg("title", {}, listenerRules(lb)));
    const rules = lb.listeners.map((l) => `${l.protocol} ${l.port}` + (l.rules.length ? ` (${l.rules.length} rule${l.rules.length > 1 ? "s" : ""})` : "")).join(", ");
    const targets = lb.target_groups.map((t) => `${t.name} → ${t.services.join(", ")}`).join("; ");
    box(node, spanX, pubY + 22 + i * 44, spanW, 38, "alb", `ALB ${lb.name} (internet-facing): ${rules}`, targets);
    g.append(node);
  });
  let y = privY + 16;
  internal.forEach((lb) => {
    const node = svg("g", { "data-load-balancer": lb.name, class: "lb" });
    node.append(svg("title", {}, listenerRules(lb)));
    const ports = lb.listeners.map((l) => `${l.protocol} ${l.port}`).join(", ");
    box(node, spanX, y, spanW, 38, "alb", `ALB ${lb.name} (internal): ${ports}`,
      lb.target_groups.map((t) => `${t.name} → ${t.services.join(", ")}`).join("; "));
    g.append(node);
    y += lbH;
  });
  for (const service of arch.services) {
    const node = svg("g", { "data-service": service.name, class: `service ${service.state.toLowerCase()}` });
    const scaling = service.autoscaling ? `, scales ${service.autoscaling.min_capacity}–${service.autoscaling.max_capacity}` : "";
    const via = [...service.target_groups.map((t) => `target group ${t}`), ...(service.discovery ? [`Cloud Map ${service.discovery}`] : [])];
    box(node, spanX, y, spanW, bandH - 6, `band ${service.state.toLowerCase()}`,
      `${service.name}  ${service.healthy}/${service.desired} ${service.state}${scaling}`);
    node.append(svg("text", { x: spanX + spanW - 8, y: y + 16, class: "sub end" },
      [via.join(", "), service.calls.length ? `calls ${service.calls.join(", ")}` : ""].filter(Boolean).join(" · ")));
    const perZone = new Map();
    for (const task of service.tasks) {
      const zone = Math.max(0, zones.indexOf(task.availability_zone));
      const n = perZone.get(zone) || 0;
      perZone.set(zone, n + 1);
      const x = vpcX + 24 + zone * colW + n * 84;
      const chip = svg("g", { "data-task": task.id, class: `task ${taskClass(task)}` });
      chip.append(svg("title", {}, `task ${task.id}\n${task.address || "no address yet"} ${task.availability_zone || ""}\n${task.last_status}, health ${task.health}\ntargets: ${JSON.stringify(task.target_health)}`));
      chip.append(svg("rect", { x, y: y + 22, width: 78, height: 18, rx: 4 }));
      chip.append(svg("text", { x: x + 6, y: y + 35 }, task.id.slice(0, 8)));
      node.append(chip);
    }
    g.append(node);
    y += bandH;
  }
  if (arch.discovery) {
    const x = W - side, node = svg("g", { "data-discovery": arch.discovery.namespace });
    const lines = [];
    for (const s of arch.discovery.services) {
      lines.push([`${s.name}`, "label"]);
      lines.push([`${s.routing_policy}, TTL ${s.ttl} s → ${s.service || "no service"}`, "sub"]);
      for (const i of s.instances) lines.push([`${i.ipv4}:${i.port} ${i.health}`, i.health === "HEALTHY" ? "sub ok" : "sub bad"]);
    }
    box(node, x, privY - 10, side - 10, 50 + lines.length * 16, "discovery", "Cloud Map (private DNS)", arch.discovery.namespace);
    lines.forEach(([text, cls], i) => node.append(svg("text", { x: x + 8, y: privY + 48 + i * 16, class: cls }, text)));
    g.append(node);
  }
  document.querySelector("#diagram").replaceChildren(root);
  const readiness = document.querySelector("#readiness");
  readiness.textContent = arch.readiness.ready ? "ready" : `not ready: ${arch.readiness.waiting.join("; ")}`;
  readiness.className = arch.readiness.ready ? "ok" : "error";
}

// -- points, events, service map, traces, metrics ---------------------------------

function evidenceText(evidence) {
  return Object.entries(evidence).map(([key, value]) =>
    `${key}: ${typeof value === "object" ? JSON.stringify(value, null, 1) : value}`).join("\n");
}

function drawPoints(answer) {
  const list = el("ol", { class: "points" });
  for (const point of answer.points) {
    list.append(el("li", { "data-point": point.number, class: point.status },
      el("details", {},
        el("summary", {}, el("span", { class: `badge ${point.status}` }, point.status.toUpperCase()), ` ${point.number}. ${point.title}`),
        el("pre", {}, evidenceText(point.evidence)))));
  }
  document.querySelector("#points").replaceChildren(list);
  document.querySelector("#points-summary").textContent =
    `${answer.passed} pass, ${answer.failed} fail, ${answer.skipped} skipped (checked ${answer.age_seconds.toFixed(0)} s ago)`;
}

function drawEvents(answer) {
  const scaling = document.querySelector("#scaling");
  if (answer.scaling.length === 0) {
    scaling.replaceChildren(el("p", { class: "note" }, "No scaling activity yet."));
  } else {
    scaling.replaceChildren(el("ul", {}, ...answer.scaling.slice(-20).map((e) =>
      el("li", { class: "scaling" }, `${e.time.slice(11, 19)} ${e.subject}: ${e.message}`))));
  }
  document.querySelector("#events").replaceChildren(el("ul", { class: "events" }, ...answer.events.slice(-60).reverse().map((e) =>
    el("li", { class: e.level === "INFO" ? "" : "warn" }, `${e.time.slice(11, 23)} (${e.source} ${e.subject}) ${e.message}`))));
}

// The service map (X-Ray's service graph): nodes in columns by their distance from the
// client, edges caller → callee with requests, error and fault rates, p50/p95.
const NODE_KIND = {
  client: "client",
  "AWS::ElasticLoadBalancingV2::LoadBalancer": "load balancer",
  "AWS::ECS::Container": "ECS service",
  "AWS::ServiceDiscovery::Service": "Cloud Map",
  remote: "remote",
};

function depths(nodes, edges) {
  const depth = new Map(nodes.map((n) => [n.name, 0]));
  for (let round = 0; round < nodes.length; round += 1) {
    for (const e of edges) {
      if (e.source !== e.target && depth.has(e.source) && depth.has(e.target)) {
        depth.set(e.target, Math.max(depth.get(e.target), depth.get(e.source) + 1));
      }
    }
  }
  return depth;
}

function rate(edge) {
  const errors = (edge.error_rate || 0) + (edge.fault_rate || 0);
  return `${(errors * 100).toFixed(errors && errors < 0.1 ? 1 : 0)} %`;
}

function drawServiceMap(map) {
  const target = document.querySelector("#service-map");
  const nodes = map.nodes || [];
  const edges = map.edges || [];
  if (nodes.length === 0) {
    target.replaceChildren(el("p", { class: "note" }, "No traced requests yet: call a route."));
    return;
  }
  const depth = depths(nodes, edges);
  const columns = Math.max(...depth.values()) + 1;
  const rows = new Map();
  const W = 1000, boxW = 165, boxH = 44;
  const colW = (W - boxW - 20) / Math.max(columns - 1, 1);
  const where = new Map();
  for (const node of nodes) {
    const d = depth.get(node.name);
    const row = rows.get(d) || 0;
    rows.set(d, row + 1);
    where.set(node.name, { x: 10 + d * colW, y: 14 + row * (boxH + 30) });
  }
  const H = 30 + Math.max(...rows.values()) * (boxH + 30);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": "service map" });
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }));
  const defs = svg("defs");
  defs.append(marker);
  root.append(defs);
  for (const edge of edges) {
    const a = where.get(edge.source), b = where.get(edge.target);
    if (!a || !b) continue;
    const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2;
    const bad = (edge.faults || 0) + (edge.errors || 0) > 0;
    root.append(svg("line", { x1, y1, x2, y2, class: bad ? "edge bad" : "edge", "marker-end": "url(#arrow)" }));
    const p = edge.latency_ms || {};
    const label = svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "sub middle" }, String(edge.requests));
    label.append(svg("title", {}, `${edge.source} → ${edge.target}: ${edge.requests} requests, ${rate(edge)} errors, p50 ${ms(p.p50)}, p95 ${ms(p.p95)}`));
    root.append(label);
  }
  for (const node of nodes) {
    const p = where.get(node.name);
    const group = svg("g", { "data-map-node": node.name, class: `mapnode ${(node.faults || 0) > 0 ? "bad" : ""}` });
    const latency = node.latency_ms ? `p95 ${ms(node.latency_ms.p95)}` : "";
    const shown = node.name.length > 22 ? `${node.name.slice(0, 21)}…` : node.name;
    group.append(svg("title", {}, node.name));
    box(group, p.x, p.y, boxW, boxH, "mapnode", shown, [NODE_KIND[node.type] || node.type, latency].filter(Boolean).join(" · "));
    root.append(group);
  }
  const table = el("table", { class: "compact" },
    el("tr", {}, ...["caller → callee", "requests", "4xx", "5xx", "error rate", "p50", "p95", "p99"].map((h) => el("th", {}, h))));
  for (const edge of edges) {
    const p = edge.latency_ms || {};
    table.append(el("tr", {}, el("td", {}, `${edge.source} → ${edge.target}`), el("td", {}, edge.requests),
      el("td", {}, edge.errors), el("td", {}, edge.faults), el("td", {}, rate(edge)), el("td", {}, ms(p.p50)), el("td", {}, ms(p.p95)), el("td", {}, ms(p.p99))));
  }
  target.replaceChildren(el("p", { class: "note" }, `over the last ${map.traces} traces`), root, table);
}

// Traces: the most recent ones, and the chosen one's spans as a waterfall.
let chosenTrace = null;
let followLatest = true; // show the most recent trace until one is clicked

function drawWaterfall(trace) {
  const spans = trace.spans || [];
  const target = document.querySelector("#waterfall");
  if (spans.length === 0) {
    target.replaceChildren();
    return;
  }
  const start = Math.min(...spans.map((s) => s.start_time));
  const end = Math.max(...spans.map((s) => s.end_time));
  const byId = new Map(spans.map((s) => [s.id, s]));
  const level = (s) => { let n = 0; for (let p = byId.get(s.parent_id); p; p = byId.get(p.parent_id)) n += 1; return n; };
  const W = 1000, rowH = 22, left = 300, span = Math.max(end - start, 1e-6);
  const root = svg("svg", { viewBox: `0 0 ${W} ${12 + rowH * spans.length}`, width: "100%", role: "img", "aria-label": `trace ${trace.trace_id}` });
  spans.forEach((s, i) => {
    const x = left + ((s.start_time - start) / span) * (W - left - 90);
    const w = Math.max(2, ((s.end_time - s.start_time) / span) * (W - left - 90));
    const cls = (s.status || 0) >= 500 ? "span bad" : (s.status || 0) >= 400 ? "span warn" : `span ${s.kind}`;
    const row = svg("g", { "data-span": s.id });
    row.append(svg("text", { x: 6 + 12 * level(s), y: 16 + i * rowH, class: "sub" },
      `${s.name}${s.kind === "call" ? " (call)" : ""}${s.inferred ? " *" : ""}`));
    row.append(svg("rect", { x, y: 4 + i * rowH, width: w, height: 16, rx: 3, class: cls }));
    row.append(svg("text", { x: x + w + 4, y: 16 + i * rowH, class: "sub" },
      `${s.duration_ms.toFixed(1)} ms${s.status ? ` ${s.status}` : ""}`
      + (s.own_ms != null ? ` (own ${s.own_ms.toFixed(2)} ms)` : "")
      + (s.target ? ` → ${s.target}` : "")));
    root.append(row);
  });
  target.replaceChildren(el("p", {}, `trace ${trace.trace_id}: ${trace.request || ""} ${trace.status || ""}, ${trace.duration_ms.toFixed(1)} ms`
    + " (* inferred: the load balancers and discovery have their own timing)"), root);
}

async function showTrace(traceId) {
  chosenTrace = traceId;
  document.querySelectorAll("#traces tr[data-trace]").forEach((row) => {
    row.classList.toggle("chosen", row.dataset.trace === traceId);
  });
  try {
    drawWaterfall(await consoleGet(`/api/traces/${encodeURIComponent(traceId)}`));
  } catch (error) {
    unavailable(document.querySelector("#waterfall"), error);
  }
}

function drawTraces(answer) {
  const traces = answer.traces || [];
  const target = document.querySelector("#traces");
  if (traces.length === 0) {
    target.replaceChildren(el("p", { class: "note" }, "No traces yet: call a route."), el("div", { id: "waterfall" }));
    return;
  }
  const table = el("table", { class: "compact" },
    el("tr", {}, ...["time", "request", "status", "duration", "services"].map((h) => el("th", {}, h))));
  for (const trace of traces.slice(0, 8)) {
    const row = el("tr", { "data-trace": trace.trace_id, class: trace.trace_id === chosenTrace ? "chosen" : "" },
      el("td", {}, new Date(trace.start_time * 1000).toISOString().slice(11, 23)),
      el("td", {}, el("code", {}, trace.request || "")), el("td", { class: trace.fault ? "error" : "" }, trace.status ?? ""),
      el("td", {}, ms(trace.duration_ms)), el("td", {}, trace.services.join(", ")));
    row.addEventListener("click", () => {
      followLatest = false;
      showTrace(trace.trace_id);
    });
    table.append(row);
  }
  const waterfall = document.querySelector("#waterfall") || el("div", { id: "waterfall" });
  target.replaceChildren(el("p", { class: "note" }, `${answer.kept} traces kept; the most recent first — the latest is drawn, click one to keep it`), table, waterfall);
  const kept = traces.some((trace) => trace.trace_id === chosenTrace);
  if (followLatest ? chosenTrace !== traces[0].trace_id : !kept) showTrace(traces[0].trace_id);
}

// Metrics (CloudWatch's names): a chart per metric and statistic, a line per dimension set.
const COLOURS = ["#3a6ea5", "#c0504d", "#4e9a6a", "#d4a73a", "#8064a2", "#4bacc6", "#f79646", "#7f7f7f"];
// The charts: what ECS and ALB show first; a line per service or per target group.
const PLOTTED = [
  { namespace: "AWS/ECS", name: "CPUUtilization", statistic: "Average", by: "ServiceName", title: "CPU utilization (%), per service" },
  { namespace: "AWS/ECS", name: "MemoryUtilization", statistic: "Average", by: "ServiceName", title: "Memory utilization (%), per service" },
  { namespace: "AWS/ApplicationELB", name: "RequestCount", statistic: "Sum", by: "TargetGroup", title: "Requests per period, per target group" },
  { namespace: "AWS/ApplicationELB", name: "TargetResponseTime", statistic: "p95", by: "TargetGroup", title: "Target response time p95 (s)" },
  { namespace: "AWS/ApplicationELB", name: "HTTPCode_Target_5XX_Count", statistic: "Sum", by: "TargetGroup", title: "Target 5XX answers per period" },
  { namespace: "AWS/ApplicationELB", name: "HealthyHostCount", statistic: "Average", by: "TargetGroup", title: "Healthy targets, per target group" },
];

function drawMetrics(answer) {
  const target = document.querySelector("#metrics");
  const charts = [];
  const W = 320, H = 130, plotH = 80;
  for (const chosen of PLOTTED) {
    const metrics = (answer.metrics || []).filter((m) => m.namespace === chosen.namespace && m.metric_name === chosen.name
      && m.statistic === chosen.statistic && chosen.by in m.dimensions && m.datapoints.length >= 2);
    if (metrics.length === 0) continue;
    const times = metrics.flatMap((m) => m.datapoints.map((d) => Date.parse(d.timestamp)));
    const t0 = Math.min(...times), t1 = Math.max(...times);
    const highest = Math.max(...metrics.flatMap((m) => m.datapoints.map((d) => d.value)));
    const top = highest > 0 ? highest : 1;
    const chart = svg("svg", { viewBox: `0 0 ${W} ${H + 14 * metrics.length}`, class: "chart", role: "img", "aria-label": chosen.title, "data-metric": `${chosen.namespace} ${chosen.name} ${chosen.statistic}` });
    chart.append(svg("text", { x: 5, y: 12, class: "sub" }, chosen.title));
    chart.append(svg("text", { x: W - 5, y: 26, class: "sub end" }, `max ${Number(highest.toPrecision(3))}`));
    chart.append(svg("line", { x1: 5, y1: 20 + plotH, x2: W - 5, y2: 20 + plotH, class: "axis" }));
    metrics.sort((a, b) => a.dimensions[chosen.by].localeCompare(b.dimensions[chosen.by]));
    metrics.forEach((metric, i) => {
      const path = metric.datapoints.map((d, j) => {
        const x = 5 + ((Date.parse(d.timestamp) - t0) / Math.max(t1 - t0, 1)) * (W - 10);
        const y = 20 + plotH - (d.value / top) * (plotH - 6);
        return `${j ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`;
      }).join(" ");
      const colour = COLOURS[i % COLOURS.length];
      chart.append(svg("path", { d: path, class: "line", stroke: colour }));
      const last = metric.datapoints[metric.datapoints.length - 1].value;
      const legend = svg("text", { x: 5, y: H + 2 + 14 * i, class: "sub" }, `${metric.dimensions[chosen.by]}: ${Number(last.toPrecision(3))}`);
      legend.style.fill = colour; // CSSOM, which the page's policy allows (no inline style)
      chart.append(legend);
    });
    charts.push(chart);
  }
  const span = `${answer.period_seconds} s datapoints over the last minutes (CloudWatch's names; \`fargo top\` shows them all)`;
  target.replaceChildren(...(charts.length ? [el("p", { class: "note" }, span), ...charts] : [el("p", { class: "note" }, "No datapoints yet: a period has to pass.")]));
}

let sources = {}; // name -> {available, path, message}: the console's optional sources

async function refreshSource(name, draw, target) {
  const source = sources[name];
  if (!source || !source.available) {
    const error = new Error(source ? source.message : `${name} is not available`);
    error.status = 404;
    unavailable(document.querySelector(target), error);
    return;
  }
  await refresh(source.path, draw, target);
}

async function refresh(path, draw, target) {
  try {
    draw(await consoleGet(path));
  } catch (error) {
    unavailable(document.querySelector(target), error);
  }
}

async function refreshPoints() {
  const button = document.querySelector("#run-points");
  button.disabled = true;
  await refresh("/api/points", drawPoints, "#points");
  button.disabled = false;
}

function every(seconds, action) {
  action();
  setInterval(action, seconds * 1000);
}

async function findConsole() {
  const state = document.querySelector("#console-state");
  try {
    const response = await fetch("/console.json", { cache: "no-store" });
    consoleUrl = response.ok ? (await response.json()).console : null;
  } catch (error) {
    consoleUrl = null;
  }
  if (!consoleUrl) {
    state.textContent = "The architecture dashboard (diagram, demonstration points, service map, metrics, scaling) is the twin's: run `fargo up` and open this page from the twin. Here the page shows its request part.";
    document.querySelectorAll(".twin-only").forEach((node) => { node.hidden = true; });
    return;
  }
  state.textContent = `The twin's console: ${consoleUrl}`;
  document.querySelector("#dashboard").hidden = false;
  every(2, () => refresh("/api/architecture", drawArchitecture, "#diagram"));
  every(3, () => refresh("/api/events", drawEvents, "#scaling"));
  const loadSources = async () => {
    try {
      sources = (await consoleGet("/api")).sources;
    } catch (error) {
      sources = {};
    }
  };
  await loadSources();
  setInterval(loadSources, 10000);
  every(5, () => refreshSource("service-map", drawServiceMap, "#service-map"));
  every(5, () => refreshSource("traces", drawTraces, "#traces"));
  every(5, () => refreshSource("metrics", drawMetrics, "#metrics"));
  every(60, refreshPoints); // each check sends requests through the twin: not too often
  document.querySelector("#run-points").addEventListener("click", refreshPoints);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-route]")) {
    button.addEventListener("click", () => callTimes(button.dataset.route, Number(button.dataset.times)));
  }
  for (const button of document.querySelectorAll("button[data-burst]")) {
    button.addEventListener("click", () => burst(button.dataset.burst, Number(button.dataset.count)));
  }
  document.querySelector("#reset").addEventListener("click", () => {
    tally.clear();
    renderTally();
  });
  findConsole();
});
