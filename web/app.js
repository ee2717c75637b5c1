// The dx-batch dashboard: plain ES module, no build step, no third-party code. It reads the same
// JSON documents as the CLI (GET /api/waves = list --json, /api/waves/:id = status --json,
// /api/waves/:id/report = report --format json, which carries each attempt's usage), and follows
// the wave's ledger over SSE.

const token = new URLSearchParams(location.search).get("token");
const withToken = (url) => (token ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}` : url);
const $ = (sel) => document.querySelector(sel);

async function getJson(url) {
  const r = await fetch(withToken(url), { headers: { accept: "application/json" } });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined) continue;
    if (k === "text") e.textContent = String(v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) e.append(c);
  return e;
}

const statusCell = (s) => el("td", { class: "status", "data-status": s, text: s });

/**
 * Replace a container's rows without losing the keyboard focus: a live update would otherwise
 * drop the focus of someone on a link in the table. Focusable elements carry data-key.
 */
function replaceKeepingFocus(container, rows) {
  const key = container.contains(document.activeElement) ? document.activeElement.getAttribute("data-key") : null;
  container.replaceChildren(...rows);
  if (key !== null) container.querySelector(`[data-key="${CSS.escape(key)}"]`)?.focus();
}

function counts(st) {
  if (!st) return "-";
  const open = st.pending + st.implementing + st.reviewing + st.revision_required;
  return `${st.total}: ${st.approved} approved, ${st.blocked} blocked, ${st.failed} failed, ${st.cancelled} cancelled, ${open} open`;
}

function elapsed(from, to) {
  if (!from) return "-";
  const s = Math.max(0, Math.round(((to ? Date.parse(to) : Date.now()) - Date.parse(from)) / 1000));
  return s < 60
    ? `${s}s`
    : s < 3600
      ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`
      : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

// ---- state ------------------------------------------------------------------------------------

let selected = decodeURIComponent(location.hash.replace(/^#wave=/, "")) || null;
let source = null;
let lastStatus = new Map(); // item -> status, for announcements
let current = null; // { status, report }

function announce(text) {
  const a = $("#announce");
  a.append(el("p", { text }));
  while (a.childElementCount > 20) a.firstElementChild.remove();
}

// ---- waves ------------------------------------------------------------------------------------

async function loadWaves() {
  const waves = await getJson("/api/waves");
  if (selected === null && waves.length > 0) select(waves[0].wave_id);
  const body = $("#waves tbody");
  replaceKeepingFocus(
    body,
    waves.map((w) => {
      const here = w.wave_id === selected;
      const link = el("a", {
        href: `#wave=${encodeURIComponent(w.wave_id)}`,
        "data-key": `wave:${w.wave_id}`,
        "aria-current": here ? "true" : null,
        text: w.wave_id,
      });
      const c = w.controller;
      const ctl = c.pid === null ? "none" : `pid ${c.pid} on ${c.host} (${c.alive ? "alive" : "dead"})`;
      return el(
        "tr",
        { "data-wave": w.wave_id, class: here ? "selected" : null },
        el("td", {}, link),
        statusCell(w.state),
        el("td", { text: w.reason_code }),
        el("td", { text: w.created_at ?? "-" }),
        el("td", { text: counts(w.stats) }),
        el("td", { text: ctl }),
      );
    }),
  );
  if (waves.length === 0) body.append(el("tr", {}, el("td", { colspan: 6, text: "no waves yet" })));
}

// ---- one wave ---------------------------------------------------------------------------------

/**
 * Tokens (input + output) and cost of an item's attempts, from what they reported; "-" where none
 * reported a figure (unknown is not zero).
 */
function usageText(rows) {
  let tokens = null,
    cost = null;
  for (const r of rows) {
    const u = r.usage;
    if (!u) continue;
    if (u.input_tokens !== null || u.output_tokens !== null) tokens = (tokens ?? 0) + (u.input_tokens ?? 0) + (u.output_tokens ?? 0);
    if (u.cost_usd !== null) cost = (cost ?? 0) + u.cost_usd;
  }
  return [tokens === null ? "-" : String(tokens), cost === null ? "-" : `$${cost.toFixed(4)}`];
}

const PHASE_SHORT = { implement: "impl", review: "review" };

function logLinks(waveId, item, attempts) {
  const td = el("td", { class: "logs" });
  const seen = new Set();
  for (const a of attempts) {
    const key = `${a.phase}:${a.attempt}`;
    if (seen.has(key) || !a.started_at) continue;
    seen.add(key);
    const url = `/api/waves/${encodeURIComponent(waveId)}/items/${encodeURIComponent(item)}/logs?attempt=${a.attempt}&phase=${a.phase}`;
    td.append(
      el("a", {
        href: withToken(url),
        target: "_blank",
        rel: "noopener",
        "data-phase": a.phase,
        "data-attempt": a.attempt,
        "data-key": `log:${item}:${key}`,
        // The visible text is short; the name a screen reader gives says whose log it is.
        "aria-label": `log of ${item}, ${a.phase} attempt ${a.attempt} (opens in a new tab)`,
        text: `${PHASE_SHORT[a.phase] ?? a.phase} ${a.attempt}`,
      }),
    );
  }
  if (!td.firstChild) td.textContent = "-";
  return td;
}

/** The report's wave events, and each attempt's dispatch and end, in time order. */
function timeline(r) {
  const rows = r.timeline.map((t, i) => ({ at: t.at, k: i, text: `${t.event}${t.reason_code ? ` (${t.reason_code})` : ""}` }));
  for (const it of r.items) {
    for (const a of it.attempts) {
      const run = `${it.beads_id} ${a.phase} ${a.attempt}`;
      rows.push({ at: a.dispatched_at, k: rows.length, text: `${run} dispatched to ${a.provider}` });
      if (a.completed_at) rows.push({ at: a.completed_at, k: rows.length, text: `${run} ended: ${a.verdict ?? a.reason_code ?? a.state ?? "?"}` });
    }
  }
  return rows.sort((a, b) => a.at.localeCompare(b.at) || a.k - b.k);
}

function renderWave() {
  if (!current) return;
  const { status: s, report: r } = current;
  $("#wave").hidden = false;
  $("#wave-h").textContent = `Wave ${s.wave_id}`;
  $("#wave-summary").replaceChildren(
    el("span", { class: "status", "data-status": s.status, id: "wave-status", text: s.status }),
    ` (${s.reason_code}); next action: ${s.next_action}; ${counts(s.stats)}`,
  );
  const attemptsOf = new Map(r.items.map((it) => [it.beads_id, it.attempts]));
  replaceKeepingFocus(
    $("#items tbody"),
    s.items.map((it) => {
      const attempts = attemptsOf.get(it.beads_id) ?? [];
      const [tokens, cost] = usageText(attempts);
      return el(
        "tr",
        { "data-item": it.beads_id },
        el("th", { scope: "row", text: it.beads_id, title: it.title }),
        statusCell(it.status),
        el("td", { text: it.phase ?? "-" }),
        el("td", { class: "num", text: it.attempt }),
        el("td", { text: it.provider ?? "-" }),
        el("td", { class: "num elapsed", "data-from": it.started_at ?? "", "data-to": it.completed_at ?? "", text: elapsed(it.started_at, it.completed_at) }),
        el("td", { text: it.reason_code }),
        el("td", { class: "num", text: tokens }),
        el("td", { class: "num", text: cost }),
        logLinks(s.wave_id, it.beads_id, attempts),
      );
    }),
  );
  $("#timeline").replaceChildren(...timeline(r).map((t) => el("li", { text: `${t.at} ${t.text}` })));
  for (const it of s.items) {
    const before = lastStatus.get(it.beads_id);
    if (before !== undefined && before !== it.status) announce(`${it.beads_id}: ${before} → ${it.status}`);
    lastStatus.set(it.beads_id, it.status);
  }
}

let refreshing = null;
let again = false;
async function refreshWave() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  const id = selected;
  refreshing = (async () => {
    try {
      const base = `/api/waves/${encodeURIComponent(id)}`;
      const [status, report] = await Promise.all([getJson(base), getJson(`${base}/report`)]);
      if (id === selected) {
        current = { status, report };
        renderWave();
      }
    } catch (e) {
      $("#conn").textContent = `error: ${e.message}`;
    } finally {
      refreshing = null;
      if (again) {
        again = false;
        void refreshWave();
      }
    }
  })();
  return refreshing;
}

let pending = null;
const soon = () => {
  if (!pending)
    pending = setTimeout(() => {
      pending = null;
      void refreshWave();
      void loadWaves();
    }, 150);
};

function select(id) {
  if (id === selected && source) return;
  selected = id;
  lastStatus = new Map();
  current = null;
  if (source) source.close();
  if (!id) return;
  if (location.hash !== `#wave=${encodeURIComponent(id)}`)
    history.replaceState(null, "", `${location.pathname}${location.search}#wave=${encodeURIComponent(id)}`);
  void refreshWave();
  // EventSource reconnects by itself and sends Last-Event-ID: the server resumes after that seq.
  source = new EventSource(withToken(`/api/waves/${encodeURIComponent(id)}/events`));
  source.onopen = () => {
    $("#conn").textContent = `live: ${id}`;
  };
  source.onerror = () => {
    $("#conn").textContent = "reconnecting…";
  };
  source.onmessage = () => soon();
}

window.addEventListener("hashchange", () => {
  const id = decodeURIComponent(location.hash.replace(/^#wave=/, ""));
  if (id) {
    select(id);
    void loadWaves();
  }
});
setInterval(() => {
  for (const td of document.querySelectorAll("td.elapsed")) if (td.dataset.from && !td.dataset.to) td.textContent = elapsed(td.dataset.from, null);
}, 1000);
setInterval(() => void loadWaves().catch(() => undefined), 10000);

if (selected) select(selected);
loadWaves().catch((e) => {
  $("#conn").textContent = `error: ${e.message}`;
});
