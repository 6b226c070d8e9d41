// fargo demo page: call the API routes on this origin and tally which task answered.
"use strict";

const VIA = ["/api/private", "/api/private-with-alb"];
const tally = new Map(); // task id -> {"/api/private": n, "/api/private-with-alb": n}

function rowFor(route) {
  return document.querySelector(`#routes tr[data-route="${route}"]`);
}

function show(route, status, ms, text, ok) {
  const row = rowFor(route);
  const cell = row.querySelector(".status");
  cell.textContent = status;
  cell.className = "status " + (ok ? "ok" : "error");
  row.querySelector(".latency").textContent = `${ms.toFixed(1)} ms`;
  row.querySelector(".body").textContent = text;
}

function count(route, text) {
  const match = /^TaskId: (\S+)/.exec(text);
  if (!match || !VIA.includes(route)) {
    return;
  }
  const counts = tally.get(match[1]) || Object.fromEntries(VIA.map((via) => [via, 0]));
  counts[route] += 1;
  tally.set(match[1], counts);
  renderTally();
}

function renderTally() {
  const body = document.querySelector("#tally tbody");
  body.replaceChildren();
  if (tally.size === 0) {
    const row = body.insertRow();
    row.className = "empty";
    const cell = row.insertCell();
    cell.colSpan = 4;
    cell.textContent = "No answers yet.";
    return;
  }
  for (const [taskId, counts] of [...tally.entries()].sort()) {
    const row = body.insertRow();
    const total = VIA.reduce((sum, via) => sum + counts[via], 0);
    for (const value of [taskId, ...VIA.map((via) => counts[via]), total]) {
      row.insertCell().textContent = String(value);
    }
  }
}

async function call(route) {
  const started = performance.now();
  try {
    const response = await fetch(route, { cache: "no-store" });
    const text = await response.text();
    const ms = performance.now() - started;
    show(route, `${response.status} ${response.statusText}`, ms, text, response.ok);
    if (response.ok) {
      count(route, text);
    }
  } catch (error) {
    show(route, "network error", performance.now() - started, String(error), false);
  }
}

async function callTimes(route, times, buttons) {
  buttons.forEach((button) => { button.disabled = true; });
  try {
    for (let i = 0; i < times; i += 1) {
      await call(route); // one at a time, so each latency is a single request's
    }
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-route]")) {
    button.addEventListener("click", () => {
      const route = button.dataset.route;
      const buttons = rowFor(route).querySelectorAll("button");
      callTimes(route, Number(button.dataset.times), buttons);
    });
  }
  document.querySelector("#reset").addEventListener("click", () => {
    tally.clear();
    renderTally();
  });
});
