// The NvDinoPipeline dashboard: pipelines, their stages with live progress, training curves and schedules,
// evaluation figures, a finished pipeline's nearest neighbours; a job's log lines and artifacts. Everything it
// shows comes from the HTTP API (/api/v1), with the token the viewer gives when the API asks for one.
"use strict";

const main = document.getElementById("main");
const tokenKey = "nvdino.token";
let timer = null;
let generation = 0;

function token() { return sessionStorage.getItem(tokenKey); }

async function api(path, asBlob) {
  const headers = token() ? { Authorization: "Bearer " + token() } : {};
  const answer = await fetch("/api/v1" + path, { headers });
  if (answer.status === 401) { throw new NeedsToken(); }
  if (!answer.ok) {
    let detail = answer.status + " " + answer.statusText;
    try { detail = (await answer.json()).detail || detail; } catch (e) { /* not JSON */ }
    throw new Error(detail);
  }
  return asBlob ? answer.blob() : answer.json();
}

class NeedsToken extends Error {}

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "class") node.className = value; else if (value !== undefined && value !== null) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Shows the page's nodes (arrays flattened, nothing for null). */
function show(...nodes) { main.replaceChildren(...nodes.flat().filter(n => n !== null && n !== undefined)); }

function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }
function statusOf(value) { return el("span", { class: "status " + (value || "") }, value || "-"); }
function bar(fraction) {
  const span = el("span");
  span.style.width = Math.round(Math.max(0, Math.min(1, fraction || 0)) * 100) + "%";
  return el("span", { class: "bar", role: "progressbar", "aria-valuenow": Math.round((fraction || 0) * 100) }, span);
}
function finished(status) { return status === "Done" || status === "Error" || status === "Canceled"; }

function askForToken(message) {
  document.getElementById("forget").hidden = true;
  const input = el("input", { type: "password", name: "token", placeholder: "Bearer token", autocomplete: "off" });
  const form = el("form", { class: "token" },
    el("h1", {}, "Sign in"),
    el("p", {}, message || "This dashboard needs a token of the API (Api:Tokens)."),
    input, el("button", { type: "submit" }, "Continue"));
  form.addEventListener("submit", event => {
    event.preventDefault();
    sessionStorage.setItem(tokenKey, input.value.trim());
    route();
  });
  show(form);
}

async function listPage(mine) {
  const pipelines = await api("/pipelines?limit=50");
  if (mine !== generation) return;
  const rows = pipelines.map(p => {
    const current = (p.steps || []).find(s => s.status === "Running" || s.status === "Pending");
    return el("tr", { "data-pipeline": p.id },
      el("td", {}, el("a", { href: "#/pipelines/" + p.id }, p.id)),
      el("td", {}, p.name || (p.action ? p.action + " job" : "")),
      el("td", {}, statusOf(p.status)),
      el("td", {}, current ? current.step : ""),
      el("td", {}, when(p.created_at)));
  });
  show(
    el("h1", {}, "Pipelines"),
    pipelines.length === 0
      ? el("p", { class: "muted" }, "No pipeline yet. Start one with `nvdino pipeline start` or POST /api/v1/pipelines.")
      : el("table", { id: "pipelines" },
          el("thead", {}, el("tr", {}, ["Pipeline", "Name", "Status", "Step", "Started"].map(h => el("th", {}, h)))),
          el("tbody", {}, rows)));
  schedule(mine, 2000);
}

function chart(title, epochs, names) {
  const width = 380, height = 170, pad = 48;
  const colors = ["#0b61c4", "#c0262d", "#1a7f37", "#8a6100", "#6d28d9"];
  const series = names.filter(n => epochs.some(e => typeof e[n] === "number"));
  if (series.length === 0 || epochs.length === 0) return null;
  const xs = epochs.map((e, i) => typeof e.epoch === "number" ? e.epoch : i + 1);
  const values = series.flatMap(n => epochs.map(e => e[n]).filter(v => typeof v === "number"));
  let low = Math.min(...values), high = Math.max(...values);
  if (high === low) { high += Math.abs(high) * 0.1 || 1; low -= Math.abs(low) * 0.1 || 1; }
  const xLow = Math.min(...xs), xHigh = Math.max(...xs) === xLow ? xLow + 1 : Math.max(...xs);
  const x = v => pad + (v - xLow) / (xHigh - xLow) * (width - pad - 8);
  const y = v => height - pad + 10 - (v - low) / (high - low) * (height - pad - 4);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", width); svg.setAttribute("height", height); svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const text = (tx, ty, content, anchor) => {
    const t = document.createElementNS(ns, "text");
    t.setAttribute("x", tx); t.setAttribute("y", ty); t.setAttribute("font-size", "10"); t.setAttribute("text-anchor", anchor || "start");
    t.textContent = content; svg.append(t);
    return t;
  };
  const axis = document.createElementNS(ns, "path");
  axis.setAttribute("d", `M${pad} 6 V${height - pad + 10} H${width - 4}`); axis.setAttribute("stroke", "#9ca3af"); axis.setAttribute("fill", "none");
  svg.append(axis);
  text(pad - 4, 12, high.toPrecision(3), "end"); text(pad - 4, height - pad + 10, low.toPrecision(3), "end");
  text(pad, height - 6, "epoch " + xLow); text(width - 4, height - 6, "epoch " + xHigh, "end");
  series.forEach((name, i) => {
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", epochs.map((e, j) => typeof e[name] === "number" ? `${x(xs[j]).toFixed(1)},${y(e[name]).toFixed(1)}` : "").join(" ").trim());
    line.setAttribute("fill", "none"); line.setAttribute("stroke", colors[i % colors.length]); line.setAttribute("stroke-width", "2");
    line.setAttribute("data-series", name);
    svg.append(line);
    text(pad + 6, 16 + i * 12, name).setAttribute("fill", colors[i % colors.length]);
  });
  return el("div", { class: "chart", "data-chart": title }, el("div", { class: "title" }, title), svg);
}

async function trainingSection(step) {
  const metrics = await api("/jobs/" + step.job_id + "/metrics");
  const epochs = metrics.epochs || [];
  const charts = [
    chart("Loss", epochs, ["loss", "dino_global_crops_loss", "dino_local_crops_loss", "ibot_loss", "koleo_loss"]),
    chart("Learning rate", epochs, ["lr", "last_layer_lr"]),
    chart("Weight decay", epochs, ["wd"]),
    chart("Teacher", epochs, ["teacher_temp", "teacher_momentum"]),
  ].filter(Boolean);
  return el("section", { id: "training-" + step.step },
    el("h2", {}, (step.step === "distill" ? "Distillation" : "Training") + " curves"),
    charts.length ? el("div", { class: "charts" }, charts) : el("p", { class: "muted" }, "No epoch has ended yet."));
}

function evaluationSection(step) {
  const entries = Object.entries(step.metrics || {});
  return el("section", { id: "evaluation" },
    el("h2", {}, "Evaluation"),
    el("table", {}, el("tbody", {}, entries.map(([name, value]) =>
      el("tr", { "data-metric": name }, el("th", {}, name), el("td", {}, Number.isInteger(value) ? value : Number(value).toFixed(4)))))));
}

async function image(path) {
  const img = el("img", { alt: "" });
  api(path.replace(/^\/api\/v1/, ""), true).then(blob => { img.src = URL.createObjectURL(blob); }).catch(() => { img.alt = "unavailable"; });
  return img;
}

async function neighboursSection(id) {
  const found = await api("/pipelines/" + id + "/neighbours?queries=6&k=5");
  const rows = await Promise.all(found.rows.map(async row => el("div", { class: "row" },
    el("figure", { class: "query" }, await image(row.query.image), el("figcaption", {}, row.query.path.split("/").slice(-2).join("/"))),
    await Promise.all(row.neighbours.map(async n => el("figure", {}, await image(n.image), el("figcaption", {}, n.cosine.toFixed(3))))))));
  return el("section", { id: "neighbours" },
    el("h2", {}, "Nearest neighbours"),
    el("p", { class: "muted" }, `Test images (left) and their nearest test images by cosine of the ${found.dimension}-value embeddings, among ${found.gallery}.`),
    el("div", { class: "grid" }, rows));
}

function trialsSection(trials) {
  const keys = [...new Set(trials.flatMap(t => Object.keys(t.parameters)))];
  const metric = (trials.find(t => t.metric !== "auto") || trials[0]).metric;
  return el("section", { id: "trials" },
    el("h2", {}, "AutoML trials"),
    el("p", { class: "muted" }, `Scored by ${metric === "knn" ? "k-NN top-1 on held-out training images" : metric === "loss" ? "minus the final training loss" : metric}; higher is better. ★ continued the pipeline.`),
    el("table", {},
      el("thead", {}, el("tr", {}, ["", "Trial", "Rung", "Status", "Epochs", "Score", ...keys.map(k => k.split(".").pop()), "Job"].map(h => el("th", {}, h)))),
      el("tbody", {}, trials.map(t => el("tr", { class: "trial" + (t.best ? " best" : ""), "data-trial": t.step },
        el("td", {}, t.best ? "★" : ""),
        el("td", {}, String(t.trial)),
        el("td", {}, String(t.rung)),
        el("td", {}, statusOf(t.status)),
        el("td", {}, t.epochs == null ? "" : String(t.epochs)),
        el("td", {}, t.score == null ? (t.error ? el("span", { class: "error" }, t.error) : "") : t.score.toFixed(4)),
        ...keys.map(k => el("td", {}, t.parameters[k] === undefined ? "" : isNaN(Number(t.parameters[k])) ? t.parameters[k] : Number(t.parameters[k]).toPrecision(3))),
        el("td", {}, el("a", { href: "#/jobs/" + t.job_id }, t.job_id.slice(0, 8))))))));
}

async function pipelinePage(id, mine) {
  const p = await api("/pipelines/" + id);
  if (mine !== generation) return;
  const steps = el("table", { id: "steps" },
    el("thead", {}, el("tr", {}, ["Step", "Status", "Progress", "Result", "Job"].map(h => el("th", {}, h)))),
    el("tbody", {}, p.steps.map(s => el("tr", { class: "step", "data-step": s.step },
      el("td", {}, s.step),
      el("td", {}, statusOf(s.status)),
      el("td", {}, bar(s.status === "Done" ? 1 : s.progress)),
      el("td", {}, s.error ? el("span", { class: "error" }, s.error) : s.waiting || (s.reused_from_pipeline ? "reused from pipeline " + s.reused_from_pipeline : s.message || "")),
      el("td", {}, s.job_id ? el("a", { href: "#/jobs/" + s.job_id }, s.job_id.slice(0, 8)) : "")))));
  const sections = [];
  if ((p.trials || []).length) sections.push(trialsSection(p.trials));
  for (const s of p.steps) {
    if ((s.step === "train" || s.step === "distill") && s.job_id && !s.reused_from_pipeline) sections.push(await trainingSection(s));
    if (s.step === "evaluate" && s.status === "Done") sections.push(evaluationSection(s));
  }
  if (p.status === "Done" && p.steps.some(s => s.step === "inference" && s.status === "Done")) {
    sections.push(await neighboursSection(id));
  }
  if (mine !== generation) return;
  show(
    el("h1", {}, (p.action ? p.action + " job " : "Pipeline ") + (p.name ? `${p.name} ` : ""), el("span", { class: "muted" }, p.id)),
    el("p", {}, statusOf(p.status), " · train data ", el("code", {}, p.train_data), p.test_data ? [" · test data ", el("code", {}, p.test_data)] : null,
      " · started ", when(p.created_at), p.completed_at ? " · ended " + when(p.completed_at) : ""),
    p.error ? el("p", { class: "error", id: "reason" }, (p.failed_stage ? p.failed_stage + ": " : "") + p.error) : null,
    steps, sections);
  if (!finished(p.status)) schedule(mine, 1500);
}

async function jobPage(id, mine) {
  const [job, logs, artifacts] = await Promise.all([api("/jobs/" + id), api("/jobs/" + id + "/logs?limit=5000"), api("/jobs/" + id + "/artifacts")]);
  if (mine !== generation) return;
  const downloads = artifacts.files.map(f => {
    const link = el("a", { href: "#", "data-path": f.path }, f.path);
    link.addEventListener("click", async event => {
      event.preventDefault();
      const blob = await api(f.url.replace(/^\/api\/v1/, ""), true);
      const save = el("a", { href: URL.createObjectURL(blob), download: f.path.split("/").pop() });
      save.click();
    });
    return el("tr", {}, el("td", {}, link), el("td", {}, f.size.toLocaleString()), el("td", {}, when(f.modified)));
  });
  show(
    el("h1", {}, `${job.action} job `, el("span", { class: "muted" }, job.id)),
    el("p", {}, statusOf(job.status), " · pipeline ", el("a", { href: "#/pipelines/" + job.pipeline_id }, job.pipeline_id),
      job.parent_job_id ? [" · parent job ", el("a", { href: "#/jobs/" + job.parent_job_id }, job.parent_job_id.slice(0, 8))] : null,
      job.worker_id ? " · worker " + job.worker_id : ""),
    job.error ? el("p", { class: "error" }, job.error) : null,
    el("h2", {}, "Log"),
    el("pre", { class: "logs", id: "logs" }, logs.lines.map(l => `${l.time.replace("T", " ").slice(0, 19)} ${l.level.slice(0, 3).toUpperCase()} ${l.message}\n`).join("")),
    el("h2", {}, "Artifacts"),
    downloads.length ? el("table", { id: "artifacts" }, el("tbody", {}, downloads)) : el("p", { class: "muted" }, "No files yet."));
  if (!logs.finished) schedule(mine, 1500);
}

function schedule(mine, delay) {
  clearTimeout(timer);
  timer = setTimeout(() => { if (mine === generation) render(mine); }, delay);
}

async function render(mine) {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [, kind, id] = hash.split("/");
  document.getElementById("forget").hidden = !token();
  try {
    if (kind === "pipelines" && id) await pipelinePage(id, mine);
    else if (kind === "jobs" && id) await jobPage(id, mine);
    else await listPage(mine);
  } catch (error) {
    if (error instanceof NeedsToken) {
      askForToken(token() ? "The API did not accept that token." : undefined);
    } else if (mine === generation) {
      show(el("p", { class: "error", id: "failure" }, String(error.message || error)));
    }
  }
}

function route() { generation++; clearTimeout(timer); render(generation); }

document.getElementById("forget").addEventListener("click", () => { sessionStorage.removeItem(tokenKey); route(); });
window.addEventListener("hashchange", route);
route();
