// suoi console: one page, views chosen by the URL's #hash, redrawn from every snapshot the
// server pushes over a WebSocket (/api/live). No framework, no build step: strings of
// HTML/SVG with every cluster-supplied value escaped.
"use strict";

let snap = null;          // the latest snapshot (see snapshot.py)
let connected = false;    // is the event stream open?
let routeKey = "";        // the route the view was last built for (forms are kept across snapshots)
const configCache = {};   // topic -> configs (fetched once per visit of a topic page)

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const enc = encodeURIComponent;
const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const bytes = (n) => (n >= 1 << 20 ? (n / (1 << 20)).toFixed(1) + " MiB" : n >= 1024 ? (n / 1024).toFixed(1) + " KiB" : n + " B");
const badge = (cls, text, title = "") => `<span class="badge ${cls}" title="${esc(title)}">${esc(text)}</span>`;
const table = (heads, rows, attrs = "") =>
  `<table ${attrs}><thead><tr>${heads.map((h) => `<th${/^#|lag|offset|size|messages|partitions|HW|start|RF|\/s\)/i.test(h) ? ' class="num"' : ""}>${esc(h)}</th>`).join("")}</tr></thead><tbody>${rows.join("") || `<tr><td colspan="${heads.length}" class="muted">none</td></tr>`}</tbody></table>`;
const td = (v, cls = "", tid = "") => `<td${cls ? ` class="${cls}"` : ""}${tid ? ` data-testid="${esc(tid)}"` : ""}>${v}</td>`;
const topicLink = (t) => `<a href="#/topics/${enc(t)}">${esc(t)}</a>`;
const groupLink = (g) => `<a href="#/groups/${enc(g)}">${esc(g)}</a>`;
const notFound = (what) => `<div class="notfound" data-testid="not-found"><h1>Not found</h1><p>${what}</p><p><a href="#/">Back to the cluster</a></p></div>`;

function route() {
  const [path, query] = (location.hash.replace(/^#/, "") || "/").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return {parts, query: new URLSearchParams(query || "")};
}

// ------------------------------------------------------------------ views
function viewCluster() {
  const h = snap.health || {};
  const q = snap.quorum;
  const alive = snap.brokers.filter((b) => b.alive).length;
  const card = (k, v, bad = false, tid = "") => `<div class="card${bad ? " bad" : ""}"><div class="k">${k}</div><div class="v"${tid ? ` data-testid="${tid}"` : ""}>${v}</div></div>`;
  let out = `<h1>Cluster <span class="muted">${esc(snap.cluster_id || "")}</span></h1><div class="cards">` +
    card("Brokers alive", `${alive} / ${snap.brokers.length}`, alive < snap.brokers.length, "brokers-alive") +
    card("Active controller", esc(snap.controller_id), false, "controller") +
    card("Topics", num(snap.topics.length)) + card("Partitions", num(h.partitions)) +
    card("Under-replicated", num(h.under_replicated), h.under_replicated > 0, "health-under-replicated") +
    card("Under min ISR", num(h.under_min_isr), h.under_min_isr > 0, "health-under-min-isr") +
    card("Offline", num(h.offline), h.offline > 0, "health-offline") +
    card("Consumer groups", num(snap.groups.length)) + `</div>`;
  const withBytes = !!snap.byte_rates;  // the brokers' metrics endpoints answer
  out += `<h2>Brokers</h2>` + table(["Broker", "Endpoint", "Rack", "State", "Leads", "Follows", "Log size", ...(withBytes ? ["In (bytes/s)", "Out (bytes/s)"] : [])],
    snap.brokers.map((b) => `<tr data-testid="broker-row-${b.id}">${td(b.id + (b.id === snap.controller_id ? " " + badge("ctl", "controller") : ""))}` +
      td(b.host ? esc(`${b.host}:${b.port}`) : '<span class="muted">unknown</span>') + td(esc(b.rack || "")) +
      td(b.alive ? "alive" : '<span class="err">offline</span>', "", `broker-state-${b.id}`) +
      td(num(b.leaders), "num") + td(num(b.followers), "num") + td(bytes(b.size), "num") +
      (withBytes ? td(byteRate(b.in_bytes_rate), "num", `broker-in-${b.id}`) + td(byteRate(b.out_bytes_rate), "num", `broker-out-${b.id}`) : "") + "</tr>"));
  out += `<h2>Raft quorum <span class="muted">(__cluster_metadata)</span></h2>`;
  if (!q) return out + `<p class="muted">No KRaft quorum reported (DescribeQuorum unsupported or failing).</p>`;
  out += `<p data-testid="quorum-leader">Leader <b>${q.leader_id}</b>, epoch ${q.leader_epoch}, high watermark ${num(q.high_watermark)}</p>`;
  const row = (r, role) => `<tr>${td(r.id + (r.id === q.leader_id ? " " + badge("L", "leader") : ""))}${td(role)}${td(num(r.log_end_offset), "num")}${td(num(r.lag), "num")}` +
    td(r.last_caught_up_ms > 0 ? new Date(r.last_caught_up_ms).toLocaleTimeString() : "–") + "</tr>";
  return out + table(["Node", "Role", "Log end offset", "Lag", "Last caught up"],
    [...q.voters.map((r) => row(r, "voter")), ...q.observers.map((r) => row(r, "observer"))]);
}

function viewMap(query) {
  const internal = query.get("internal") === "1";
  const held = {};
  for (const b of snap.brokers) held[b.id] = [];
  for (const t of snap.topics) {
    if (t.internal && !internal) continue;
    for (const p of t.partitions) {
      for (const r of p.replicas) {
        const role = r === p.leader ? "L" : "F";
        const out = !p.isr.includes(r);
        (held[r] = held[r] || []).push({t: t.name, p: p.partition, role, out, offline: p.leader < 0});
      }
    }
  }
  const boxes = snap.brokers.map((b) => {
    const items = (held[b.id] || []).map((x) =>
      `<li class="${x.out ? "out" : ""}${x.offline ? " offline" : ""}" data-testid="replica-${esc(x.t)}-${x.p}-${b.id}" data-role="${x.role}" data-in-isr="${!x.out}">` +
      `${badge(x.role, x.role, x.role === "L" ? "leader" : "follower")}${x.out ? badge("out", "out of ISR") : ""}${esc(x.t)}-${x.p}</li>`).join("");
    return `<div class="broker${b.alive ? "" : " dead"}" data-testid="broker-box-${b.id}"><h3>Broker ${b.id}` +
      `${b.id === snap.controller_id ? " " + badge("ctl", "controller") : ""}${b.alive ? "" : ' <span class="err">offline</span>'}</h3>` +
      `<div class="muted">${b.host ? esc(`${b.host}:${b.port}`) : ""}</div><ul>${items || '<li class="muted">no partitions</li>'}</ul></div>`;
  }).join("");
  return `<h1>Brokers ↔ partitions</h1><p class="muted">Each box is a broker holding replicas: ${badge("L", "L")}leader, ` +
    `${badge("F", "F")}follower, red: out of the in-sync replicas (ISR). ` +
    `<a href="#/map${internal ? "" : "?internal=1"}">${internal ? "Hide" : "Show"} internal topics</a></p><div class="brokers">${boxes}</div>`;
}

const byteRate = (r) => (r === null || r === undefined ? "–" : bytes(Math.round(r)) + "/s");

// Records/s from the Kafka protocol always; bytes/s too when the brokers' metrics endpoints
// (admin.listeners) answer (snap.byte_rates).
function viewTopics() {
  const rate = (r) => (r === null || r === undefined ? "–" : r.toLocaleString("en-US"));
  const withBytes = !!snap.byte_rates;
  return `<h1>Topics</h1>` + table(["Topic", "Partitions", "RF", "Messages", "Size", ...(withBytes ? ["In (bytes/s)", "Out (bytes/s)"] : []),
    "In (records/s)", "Out (records/s)", "Under-replicated"],
    snap.topics.map((t) => `<tr data-testid="topic-row-${esc(t.name)}">${td(topicLink(t.name) + (t.internal ? ' <span class="muted">internal</span>' : ""))}` +
      td(t.partitions.length, "num") + td(t.replication_factor, "num") + td(num(t.messages), "num", `messages-${t.name}`) + td(bytes(t.size), "num") +
      (withBytes ? td(byteRate(t.in_bytes_rate), "num", `in-bytes-rate-${t.name}`) + td(byteRate(t.out_bytes_rate), "num", `out-bytes-rate-${t.name}`) : "") +
      td(rate(t.in_rate), "num", `in-rate-${t.name}`) + td(rate(t.out_rate), "num", `out-rate-${t.name}`) +
      td(t.partitions.filter((p) => p.isr.length < p.replicas.length).length, "num") + "</tr>"));
}

// The seed's §2.3 picture: a partition as a row of offsets, log start … high watermark, with
// each replica's log end offset below and each group's committed position above.
function offsetBars(t, shown) {
  const W = 760, X0 = 70, ROW = 78;
  const positions = (p) => snap.groups.flatMap((g) => g.offsets.filter((o) => o.topic === t.name && o.partition === p.partition).map((o) => ({g: g.id, off: o.committed})));
  let max = 1;
  for (const p of shown) {
    max = Math.max(max, p.high_watermark || 0, ...Object.values(p.replica_leo), ...positions(p).map((x) => x.off));
  }
  const x = (o) => X0 + (W * Math.max(0, o)) / max;
  const rows = shown.map((p, i) => {
    const y = 8 + i * ROW, hw = p.high_watermark ?? 0, start = p.log_start ?? 0, top = y + 14;
    let s = `<g data-testid="bar-${p.partition}"><text x="4" y="${top + 12}">p${p.partition}</text>` +
      `<rect x="${X0}" y="${top}" width="${W}" height="16" fill="#eef1f5"/>` +
      `<rect x="${X0}" y="${top}" width="${x(start) - X0}" height="16" fill="#d0d5dd"><title>deleted below log start ${start}</title></rect>` +
      `<rect x="${x(start)}" y="${top}" width="${Math.max(0, x(hw) - x(start))}" height="16" fill="#7aa7ff"><title>records ${start} … ${hw - 1}</title></rect>` +
      `<line x1="${x(hw)}" x2="${x(hw)}" y1="${top - 4}" y2="${top + 20}" stroke="#1d2330" stroke-width="2"/>` +
      `<text x="${x(hw) + 3}" y="${top - 4}">HW ${hw}</text><text x="${X0}" y="${top - 4}">log start ${start}</text>`;
    const byLeo = {};  // replicas at one offset share one marker and one label
    for (const [rid, leo] of Object.entries(p.replica_leo)) (byLeo[leo] = byLeo[leo] || []).push(Number(rid));
    for (const [leo, ids] of Object.entries(byLeo)) {
      const out = ids.some((r) => !p.isr.includes(r));
      const label = ids.sort((a, b) => (a === p.leader ? -1 : b === p.leader ? 1 : a - b)).map((r) => (r === p.leader ? "L" : "F") + r + (p.isr.includes(r) ? "" : "✗")).join(" ");
      s += `<path d="M${x(leo)},${top + 17} l-5,8 h10 z" fill="${out ? "#d1242f" : "#1f6feb"}"><title>log end offset ${leo}: brokers ${ids.join(", ")}</title></path>` +
        `<text x="${x(leo) + 7}" y="${top + 27}">LEO ${leo}: ${esc(label)}</text>`;
    }
    positions(p).forEach((c, j) => {
      const ly = top + 42 + j * 12;
      s += `<path d="M${x(c.off)},${top} l-5,-8 h10 z" fill="#bf8700"><title>group ${esc(c.g)} committed ${c.off}</title></path>` +
        `<line x1="${x(c.off)}" x2="${x(c.off)}" y1="${top}" y2="${ly - 9}" stroke="#bf8700" stroke-dasharray="2 2"/>` +
        `<text x="${x(c.off) + 3}" y="${ly}" style="fill:#bf8700">${esc(c.g)} @ ${c.off}</text>`;
    });
    return s + "</g>";
  });
  const extra = Math.max(0, ...shown.map((p) => positions(p).length - 1)) * 12;
  return `<svg class="bar" width="${X0 + W + 150}" height="${16 + shown.length * ROW + extra}" data-testid="offset-bars">${rows.join("")}</svg>`;
}

const PAGE = 100;  // partitions drawn per page: a topic of 1,000 still renders in well under a second

function viewTopic(name, query) {
  const t = snap.topics.find((x) => x.name === name);
  if (!t) return notFound(`There is no topic <b>${esc(name)}</b> in this cluster.`);
  const pages = Math.ceil(t.partitions.length / PAGE), at = Math.min(Math.max(0, Number(query.get("page")) || 0), Math.max(0, pages - 1));
  const shown = t.partitions.slice(at * PAGE, (at + 1) * PAGE);
  const pager = pages < 2 ? "" : `<p data-testid="pager">Partitions ${at * PAGE}–${at * PAGE + shown.length - 1} of ${t.partitions.length}: ` +
    Array.from({length: pages}, (_, i) => (i === at ? `<b>${i + 1}</b>` : `<a href="#/topics/${enc(name)}?page=${i}">${i + 1}</a>`)).join(" ") + "</p>";
  const groups = snap.groups.filter((g) => g.offsets.some((o) => o.topic === name));
  let out = `<h1>Topic ${esc(name)}</h1><div class="cards">` +
    `<div class="card"><div class="k">Partitions</div><div class="v">${t.partitions.length}</div></div>` +
    `<div class="card"><div class="k">Replication factor</div><div class="v">${t.replication_factor}</div></div>` +
    `<div class="card"><div class="k">Messages</div><div class="v" data-testid="topic-messages">${num(t.messages)}</div></div>` +
    `<div class="card"><div class="k">Size</div><div class="v">${bytes(t.size)}</div></div></div>`;
  out += `<h2>Partitions as offsets</h2><p class="muted">log start … high watermark (HW): the records consumers can read; ▲ the replicas' log end offsets ` +
    `(LEO; L leader, F follower, ✗/red: out of the ISR); ▼ a consumer group's committed offset.</p>` + pager + offsetBars(t, shown);
  out += `<h2>Replicas</h2>` + table(["Partition", "Leader", "Epoch", "Replicas", "ISR", "Log start", "HW", "Messages", ""],
    shown.map((p) => `<tr data-testid="partition-${p.partition}">${td(p.partition)}${td(p.leader < 0 ? '<span class="err">none</span>' : p.leader, "", `leader-${p.partition}`)}` +
      td(p.leader_epoch) + td(esc(p.replicas.join(", "))) + td(esc(p.isr.join(", ")), "", `isr-${p.partition}`) +
      td(num(p.log_start), "num", `log-start-${p.partition}`) + td(num(p.high_watermark), "num", `hw-${p.partition}`) +
      td(num((p.high_watermark || 0) - (p.log_start || 0)), "num") + td(`<a href="#/messages/${enc(name)}/${p.partition}">browse</a>`) + "</tr>"));
  out += `<h2>Consumer groups reading it</h2>` + table(["Group", "State", "Lag"],
    groups.map((g) => `<tr>${td(groupLink(g.id))}${td(esc(g.state))}${td(num(g.offsets.filter((o) => o.topic === name).reduce((a, o) => a + (o.lag || 0), 0)), "num")}</tr>`));
  const cfg = configCache[name];
  out += `<h2>Configs</h2>` + (cfg === undefined || cfg === "loading" ? '<p class="muted">loading…</p>' : cfg.error ? `<p class="err">${esc(cfg.error)}</p>` :
    table(["Name", "Value", "Source"], cfg.configs.map((c) => `<tr>${td(esc(c.name))}${td(c.sensitive ? "<i>hidden</i>" : esc(c.value), "", `config-${c.name}`)}${td(c.source === 1 ? "topic" : c.source === 5 ? "default" : "broker")}</tr>`)));
  if (cfg === undefined) {  // once per visit of the page: configs change rarely
    configCache[name] = "loading";
    fetch(`/api/topics/${enc(name)}/configs`).then((r) => r.json()).then((j) => { configCache[name] = j; render(); })
      .catch((e) => { configCache[name] = {error: String(e)}; render(); });
  }
  return out;
}

function viewGroups() {
  return `<h1>Consumer groups</h1>` + table(["Group", "State", "Protocol", "Members", "Coordinator", "Lag"],
    snap.groups.map((g) => `<tr data-testid="group-row-${esc(g.id)}">${td(groupLink(g.id))}${td(esc(g.state))}${td(esc(g.protocol_type + (g.protocol ? " / " + g.protocol : "")))}` +
      td(g.members.length, "num") + td(esc(g.coordinator ?? "–")) + td(num(g.offsets.length ? g.lag : null), "num") + "</tr>"));
}

// The seed's §4 picture: partitions on the left, the group's consumers on the right, a line for
// each assignment; a consumer with no partition is idle.
function assignmentSvg(g) {
  const topics = new Set(g.offsets.map((o) => o.topic));
  g.members.forEach((m) => m.assignment.forEach(([t]) => topics.add(t)));
  const parts = [];
  for (const t of snap.topics) if (topics.has(t.name)) t.partitions.forEach((p) => parts.push([t.name, p.partition]));
  const owner = {};
  g.members.forEach((m, i) => m.assignment.forEach(([t, p]) => { owner[`${t}/${p}`] = i; }));
  const ROW = 30, H = 20 + Math.max(parts.length, g.members.length) * ROW;
  let s = `<svg width="760" height="${H}" data-testid="assignment">`;
  parts.forEach(([t, p], i) => {
    const y = 14 + i * ROW, o = owner[`${t}/${p}`];
    s += `<rect x="10" y="${y}" width="200" height="22" rx="4" fill="${o === undefined ? "#eef1f5" : "#dbe7ff"}" stroke="#98a2b3"/><text x="18" y="${y + 15}">${esc(t)}-${p}</text>`;
    if (o !== undefined) s += `<line x1="210" y1="${y + 11}" x2="470" y2="${25 + o * ROW}" stroke="#1f6feb" stroke-width="1.5"/>`;
  });
  g.members.forEach((m, i) => {
    const y = 14 + i * ROW, idle = m.assignment.length === 0;
    s += `<rect x="470" y="${y}" width="270" height="22" rx="4" fill="${idle ? "#f2f4f7" : "#e6f4ea"}" stroke="${idle ? "#98a2b3" : "#3fb950"}" stroke-dasharray="${idle ? "4 3" : ""}"/>` +
      `<text x="478" y="${y + 15}">${esc(m.client_id)} ${idle ? "(idle)" : `(${m.assignment.length})`}</text>`;
  });
  return s + "</svg>";
}

function viewGroup(id) {
  const g = snap.groups.find((x) => x.id === id);
  if (!g) return notFound(`There is no consumer group <b>${esc(id)}</b> in this cluster.`);
  let out = `<h1>Consumer group ${esc(id)}</h1><div class="cards">` +
    `<div class="card"><div class="k">State</div><div class="v" data-testid="group-state">${esc(g.state)}</div></div>` +
    `<div class="card"><div class="k">Members</div><div class="v" data-testid="group-members">${g.members.length}</div></div>` +
    `<div class="card"><div class="k">Assignor</div><div class="v">${esc(g.protocol || "–")}</div></div>` +
    `<div class="card${g.lag > 0 ? " bad" : ""}"><div class="k">Total lag</div><div class="v" data-testid="lag-total">${num(g.offsets.length ? g.lag : null)}</div></div></div>`;
  out += `<h2>Assignment</h2>` + assignmentSvg(g);
  out += `<h2>Members</h2>` + table(["Client id", "Host", "Member id", "Partitions"],
    g.members.map((m) => `<tr data-testid="member" data-idle="${m.assignment.length === 0}">${td(esc(m.client_id))}${td(esc(m.host))}${td(`<span class="muted">${esc(m.member_id)}</span>`)}` +
      td(m.assignment.length ? esc(m.assignment.map(([t, p]) => `${t}-${p}`).join(", ")) : badge("idle", "idle")) + "</tr>"));
  out += `<h2>Rebalance timeline</h2><p class="muted">Membership and state changes, as the console's polls saw them.</p>` +
    table(["Time", "State", "Members", "Idle", "Change"], (g.timeline || []).slice().reverse().map((e) =>
      `<tr data-testid="timeline-row">${td(new Date(e.at_ms).toLocaleTimeString())}${td(esc(e.state))}${td(e.members, "num")}${td(e.idle, "num")}${td(esc(e.change))}</tr>`));
  out += `<h2>Committed offsets and lag</h2>` + table(["Topic", "Partition", "Committed offset", "Lag"],
    g.offsets.map((o) => `<tr>${td(topicLink(o.topic))}${td(o.partition, "num")}${td(num(o.committed), "num")}${td(num(o.lag), "num", `lag-${o.topic}-${o.partition}`)}</tr>`));
  return out;
}

// The message browser keeps its form across snapshots; only the records table is rebuilt.
function viewMessages(parts, query) {
  const topics = snap.topics.map((t) => t.name);
  const topic = parts[1] || topics.find((t) => !t.startsWith("__")) || topics[0] || "";
  if (parts[1] && !topics.includes(topic)) return notFound(`There is no topic <b>${esc(topic)}</b> in this cluster.`);
  const partition = Number(parts[2] || 0);
  const opts = topics.map((t) => `<option${t === topic ? " selected" : ""}>${esc(t)}</option>`).join("");
  const t = snap.topics.find((x) => x.name === topic);
  const popts = (t ? t.partitions : []).map((p) => `<option${p.partition === partition ? " selected" : ""}>${p.partition}</option>`).join("");
  return `<h1>Messages</h1><form class="inline" id="browse">` +
    `<label>Topic<select name="topic">${opts}</select></label><label>Partition<select name="partition">${popts}</select></label>` +
    `<label>From offset<input name="offset" size="8" value="${esc(query.get("offset") || "")}" placeholder="newest"></label>` +
    `<label>or time (ISO)<input name="time" size="20" value="${esc(query.get("time") || "")}" placeholder="2026-12-07T10:00"></label>` +
    `<label>Limit<input name="limit" size="4" value="${esc(query.get("limit") || "50")}"></label><button>Read</button></form>` +
    `<div id="records"><p class="muted">loading…</p></div>`;
}

async function loadMessages(parts, query) {
  const box = document.getElementById("records");
  if (!box) return;
  const topic = document.querySelector("#browse select[name=topic]")?.value;
  if (!topic) { box.innerHTML = '<p class="muted">no topic</p>'; return; }
  const partition = document.querySelector("#browse select[name=partition]")?.value || 0;
  const params = new URLSearchParams({limit: query.get("limit") || "50"});
  if (query.get("offset")) params.set("offset", query.get("offset"));
  if (query.get("time")) params.set("timestamp", String(Date.parse(query.get("time"))));
  try {
    const r = await fetch(`/api/topics/${enc(topic)}/partitions/${enc(partition)}/messages?${params}`);
    const j = await r.json();
    if (!r.ok) { box.innerHTML = `<p class="err">${esc(j.error)}</p>`; return; }
    const more = (v) => (v.size > v.data.length && v.encoding !== "base64" ? `<div class="muted">… ${num(v.size)} bytes in all</div>` : "");
    const schema = (v) => (v.schema_id !== undefined ? `<div class="muted" data-testid="schema">${esc(v.encoding)}, schema id ${v.schema_id}${v.message ? ", " + esc(v.message) : ""}</div>` : "");
    const show = (v) => (v === null ? '<span class="muted">null</span>' :
      v.encoding === "base64" ? `<pre class="val muted">base64 ${esc(v.data)}</pre>${schema(v)}` :
      `<pre class="val">${esc(v.encoding === "text" ? v.data : JSON.stringify(JSON.parse(v.data), null, 1))}</pre>${more(v)}${schema(v)}`);
    const newest = !query.get("offset") && !query.get("time");  // the newest records, newest first
    const records = newest ? j.records.slice().reverse() : j.records;
    box.innerHTML = `<p class="muted" data-testid="records-range">${esc(topic)}-${esc(partition)}: log start ${j.log_start}, high watermark ${j.high_watermark}; ` +
      `${newest ? `the newest ${records.length}, newest first` : `${records.length} from offset ${j.from}`}</p>` +
      table(["Offset", "Timestamp", "Key", "Value", "Headers"], records.map((m) => `<tr data-testid="record-${m.offset}">${td(m.offset, "num")}` +
        td(m.timestamp >= 0 ? esc(new Date(m.timestamp).toISOString()) : "–") + td(show(m.key)) + td(show(m.value), "", `value-${m.offset}`) +
        td(m.headers.map((h) => `<div>${esc(h.key)}: ${h.value ? esc(h.value.data) : "null"}</div>`).join(""), "", `headers-${m.offset}`) + "</tr>"));
  } catch (e) {
    box.innerHTML = `<p class="err">${esc(e)}</p>`;
  }
}

function wireBrowser() {
  const form = document.getElementById("browse");
  if (!form) return;
  const go = () => {
    const f = new FormData(form), q = new URLSearchParams();
    for (const k of ["offset", "time", "limit"]) if (f.get(k)) q.set(k, f.get(k));
    location.hash = `#/messages/${enc(f.get("topic"))}/${enc(f.get("partition") || 0)}${q.size ? "?" + q : ""}`;
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); go(); });
  form.querySelector("select[name=topic]").addEventListener("change", () => { form.partition.value = "0"; go(); });
  form.querySelector("select[name=partition]").addEventListener("change", go);
}

// Pages read on demand (/api/transactions, /api/acls, /api/users; each cached server-side for one
// poll interval), again every 2 s while the page is open.
const loaded = {transactions: null, acls: null, users: null};
const onDemandViews = {transactions: () => viewTransactions(), acls: () => viewAcls(), users: () => viewUsers()};
function viewTransactions() {
  const txns = loaded.transactions;
  if (txns === null) return `<h1>Transactions</h1><p class="muted">loading…</p>`;
  if (txns.error) return `<h1>Transactions</h1><p class="err">${esc(txns.error)}</p>`;
  const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "–");
  return `<h1>Transactions</h1>` + table(["Transactional id", "State", "Producer id", "Epoch", "Started", "Timeout (ms)", "Partitions"],
    txns.transactions.map((t) => `<tr data-testid="txn-${esc(t.transactional_id)}">${td(esc(t.transactional_id))}${td(esc(t.state), "", `txn-state-${t.transactional_id}`)}` +
      td(t.producer_id, "num") + td(t.producer_epoch ?? "–", "num") + td(time(t.start_ms)) + td(num(t.timeout_ms), "num") +
      td(esc((t.partitions || []).join(", "))) + "</tr>")) +
    `<h2>Producers by partition</h2><p class="muted">DescribeProducers: an open transaction's first offset holds back the last stable offset that read_committed consumers read up to.</p>` +
    table(["Partition", "Producer id", "Epoch", "Last sequence", "Last write", "Open transaction from offset"],
      txns.producers.map((p) => `<tr>${td(topicLink(p.topic) + "-" + p.partition)}${td(p.producer_id, "num")}${td(p.producer_epoch, "num")}` +
        td(p.last_sequence, "num") + td(time(p.last_timestamp)) + td(p.txn_start_offset >= 0 ? p.txn_start_offset : "–", "num", `txn-open-${p.topic}-${p.partition}`) + "</tr>"));
}

async function loadOnDemand(page) {
  try {
    const r = await fetch(`/api/${page}`);
    loaded[page] = await r.json();
  } catch (e) {
    loaded[page] = {error: String(e)};
  }
  if ((route().parts[0] || "") !== page) return;
  document.getElementById("view").innerHTML = onDemandViews[page]();
  if (page === "acls") document.getElementById("actions").hidden = loaded.acls.enabled === false;
}

// ACLs (DescribeAcls) with a delete button per binding; users: SCRAM credentials (mechanism and
// iterations: Kafka never answers more about a credential) and client quotas.
const aclText = (b) => `${b.permission} ${b.principal} ${b.operation} on ${b.resource_type} ${b.resource_name} (${b.pattern_type}) from host ${b.host}`;
function viewAcls() {
  const acls = loaded.acls;
  if (acls === null) return `<h1>ACLs</h1><p class="muted">loading…</p>`;
  if (acls.error) return `<h1>ACLs</h1><p class="err">${esc(acls.error)}</p>`;
  if (!acls.enabled) return `<h1>ACLs</h1><div class="notfound" data-testid="acl-disabled">${esc(acls.message)}</div>`;
  return `<h1>ACLs</h1><p class="muted">Every binding of the cluster's authorizer: a DENY wins over any ALLOW.</p>` +
    table(["Permission", "Principal", "Operation", "Resource", "Name", "Pattern", "Host", ""], acls.bindings.map((b) =>
      `<tr data-testid="acl-row">${td(b.permission === "DENY" ? `<span class="err">DENY</span>` : "ALLOW")}${td(esc(b.principal))}${td(esc(b.operation))}` +
      td(esc(b.resource_type)) + td(esc(b.resource_name)) + td(esc(b.pattern_type)) + td(esc(b.host)) +
      td(`<button class="danger" data-acl="${esc(JSON.stringify(b))}">Delete</button>`) + "</tr>"));
}

function viewUsers() {
  const users = loaded.users;
  if (users === null) return `<h1>Users</h1><p class="muted">loading…</p>`;
  if (users.error) return `<h1>Users</h1><p class="err">${esc(users.error)}</p>`;
  const value = (k, v) => `${k}=${Number.isInteger(v) ? v : v.toFixed(2)}`;
  const entity = (q) => q.entity.map((e) => `${e.type}=${e.name ?? "<default>"}`).join(", ");
  return `<h1>Users</h1>${users.errors.map((e) => `<p class="err">${esc(e)}</p>`).join("")}` +
    `<h2>SCRAM credentials</h2><p class="muted">DescribeUserScramCredentials: each user's mechanisms and iteration counts (never a salt or a key).</p>` +
    table(["User", "Credentials"], users.scram.map((u) => `<tr data-testid="scram-${esc(u.user)}">${td(esc(u.user))}` +
      td(esc(u.credentials.map((c) => `${c.mechanism} (${c.iterations} iterations)`).join(", ")), "", `scram-creds-${u.user}`) + "</tr>")) +
    `<h2>Client quotas</h2><p class="muted">DescribeClientQuotas: byte rates in bytes/s, request_percentage in % of a thread.</p>` +
    table(["Entity", "Quotas"], users.quotas.map((q) => `<tr>${td(esc(entity(q)))}` +
      td(esc(Object.entries(q.values).map(([k, v]) => value(k, v)).join(", ")), "", `quota-${entity(q)}`) + "</tr>"));
}

// ------------------------------------------------------------------ writes (each confirmed first)
// Built once per route (in #actions, outside the view the snapshots redraw), so typing survives.
async function send(method, path, body) {
  const r = await fetch(path, {method, headers: {"Content-Type": "application/json"}, body: body === undefined ? undefined : JSON.stringify(body)});
  const j = await r.json();
  if (!r.ok) throw new Error(j.error || `HTTP ${r.status}`);
  return j;
}

const formBox = (id, title, fields, button, extra = "") =>
  `<h2>${title}</h2><form class="inline" id="${id}">${fields}<button>${button}</button>${extra}<span class="status" data-testid="${id}-status"></span></form>`;
const field = (label, name, attrs = "") => `<label>${label}<input name="${name}" ${attrs}></label>`;

function actionsFor(parts) {
  const page = parts[0] || "cluster";
  if (document.body.dataset.readOnly === "true") return "";
  if (page === "topics" && parts[1] === undefined) {
    return formBox("create-topic", "Create a topic", field("Name", "name", 'required size="24"') +
      field("Partitions", "partitions", 'value="3" size="4"') + field("Replication factor", "replication_factor", 'value="1" size="4"'), "Create");
  }
  if (page === "topics") {
    return formBox("set-config", "Set a config", field("Name", "name", 'size="28" required placeholder="retention.ms"') +
      field("Value (empty: back to the default)", "value", 'size="20"'), "Set") +
      formBox("add-partitions", "Add partitions", field("New partition count", "count", 'size="6" required'), "Add") +
      formBox("delete-topic", "Delete the topic", "", "Delete", "").replace("<button>", '<button class="danger">');
  }
  if (page === "messages") {
    return formBox("produce", "Produce a record", field("Key", "key", 'size="14"') + field("Value", "value", 'size="40"') +
      field("Headers (k=v, …)", "headers", 'size="24"'), "Produce");
  }
  if (page === "acls") {
    const select = (label, name, options) => `<label>${label}<select name="${name}">${options.map((o) => `<option>${o}</option>`).join("")}</select></label>`;
    return formBox("create-acl", "Add an ACL", field("Principal", "principal", 'size="16" required placeholder="User:alice"') +
      select("Permission", "permission", ["ALLOW", "DENY"]) +
      select("Operation", "operation", ["READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CLUSTER_ACTION", "ALL"]) +
      select("Resource", "resource_type", ["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"]) + field("Name", "resource_name", 'size="16" placeholder="* for all"') +
      select("Pattern", "pattern_type", ["LITERAL", "PREFIXED"]) + field("Host", "host", 'size="8" value="*"'), "Add") +
      '<p class="status" data-testid="acl-delete-status"></p>';  // out of the view, which reloads redraw
  }
  if (page === "groups" && parts[1] !== undefined) {
    const opts = snap.topics.filter((t) => !t.internal).map((t) => `<option>${esc(t.name)}</option>`).join("");
    return formBox("reset-offsets", "Reset offsets", `<label>Topic<select name="topic">${opts}</select></label>` +
      `<label>To<select name="to"><option>earliest</option><option>latest</option><option>offset</option></select></label>` +
      field("Offset", "offset", 'size="8"'), "Dry run", '<button name="execute" value="1" class="danger">Execute</button>') +
      '<div id="reset-plan"></div>';
  }
  return "";
}

function wireActions(parts) {
  const on = (id, fn) => {
    const form = document.getElementById(id);
    if (!form) return;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const status = form.querySelector(".status");
      status.className = "status";
      status.textContent = "…";
      try {
        const text = await fn(new FormData(form), e.submitter);
        status.textContent = text ?? "cancelled";
        status.classList.toggle("ok", text !== null);
      } catch (err) {
        status.textContent = err.message;
        status.classList.add("err");
      }
    });
  };
  const topic = parts[1];
  on("create-topic", async (f) => {
    if (!confirm(`Create topic ${f.get("name")}?`)) return null;
    const j = await send("POST", "/api/topics", {name: f.get("name"), partitions: Number(f.get("partitions")), replication_factor: Number(f.get("replication_factor"))});
    return `created ${j.topic}`;
  });
  on("set-config", async (f) => {
    const value = f.get("value") || null;
    if (!confirm(value === null ? `Remove ${topic}'s ${f.get("name")} override?` : `Set ${f.get("name")}=${value} on ${topic}?`)) return null;
    await send("POST", `/api/topics/${enc(topic)}/configs`, {name: f.get("name"), value});
    delete configCache[topic];  // redrawn with the new value
    render();
    return value === null ? "back to the default" : "set";
  });
  on("add-partitions", async (f) => {
    if (!confirm(`Grow ${topic} to ${f.get("count")} partitions? Keys will map to other partitions.`)) return null;
    await send("POST", `/api/topics/${enc(topic)}/partitions`, {count: Number(f.get("count"))});
    return "partitions added";
  });
  on("delete-topic", async () => {
    if (!confirm(`Delete topic ${topic} and all its records?`)) return null;
    await send("DELETE", `/api/topics/${enc(topic)}`);
    return "deleted";
  });
  on("produce", async (f) => {
    const t = document.querySelector("#browse select[name=topic]").value, p = document.querySelector("#browse select[name=partition]").value;
    const headers = (f.get("headers") || "").split(",").map((h) => h.trim()).filter(Boolean).map((h) => [h.split("=")[0], h.includes("=") ? h.slice(h.indexOf("=") + 1) : null]);
    if (!confirm(`Produce one record to ${t}-${p}?`)) return null;
    const j = await send("POST", `/api/topics/${enc(t)}/partitions/${enc(p)}/messages`, {key: f.get("key") || null, value: f.get("value"), headers});
    return `written at offset ${j.offset}`;
  });
  on("create-acl", async (f) => {
    const binding = Object.fromEntries(["principal", "permission", "operation", "resource_type", "resource_name", "pattern_type", "host"].map((k) => [k, f.get(k)]));
    if (!confirm(`Add the ACL: ${aclText(binding)}?`)) return null;
    await send("POST", "/api/acls", binding);
    await loadOnDemand("acls");
    return "added";
  });
  on("reset-offsets", async (f, submitter) => {
    const execute = submitter && submitter.name === "execute";
    const body = {topic: f.get("topic"), to: f.get("to"), offset: f.get("offset"), execute};
    if (execute && !confirm(`Commit new offsets for group ${parts[1]} on ${body.topic}?`)) return null;
    const j = await send("POST", `/api/groups/${enc(parts[1])}/reset-offsets`, body);
    document.getElementById("reset-plan").innerHTML = table(["Topic", "Partition", "Current offset", "New offset"],
      j.plan.map((r) => `<tr>${td(esc(r.topic))}${td(r.partition, "num")}${td(num(r.current), "num")}${td(num(r.new), "num", `plan-${r.partition}`)}</tr>`));
    return execute ? "committed" : "dry run: nothing committed";
  });
}

// ------------------------------------------------------------------ rendering
let lastHw = null;
let actionsKey = null;  // the route #actions was built for
function render() {
  const banner = document.getElementById("banner");
  const live = document.getElementById("live");
  live.textContent = connected ? "live" : "reconnecting…";
  live.className = connected ? "live on" : "live";
  if (!snap) return;
  if (!snap.ok || !connected) {
    banner.hidden = false;
    banner.textContent = !connected ? "The console lost its connection to the server; reconnecting…"
      : `The cluster is unreachable (${snap.error}); showing the last known state.`;
    banner.dataset.testid = "banner";
  } else {
    banner.hidden = true;
  }
  const {parts, query} = route();
  const page = parts[0] || "cluster";
  document.querySelectorAll("nav a").forEach((a) => a.classList.toggle("active", a.dataset.nav === page));
  const view = document.getElementById("view");
  const key = location.hash;
  if (key !== actionsKey) {
    actionsKey = key;
    document.getElementById("actions").innerHTML = actionsFor(parts);
    wireActions(parts);
  }
  if (page === "messages") {
    const t = snap.topics.find((x) => x.name === (parts[1] || ""));
    const hw = t ? JSON.stringify(t.partitions.map((p) => p.high_watermark)) : "";
    if (key !== routeKey) {
      view.innerHTML = viewMessages(parts, query);
      document.getElementById("actions").hidden = !document.getElementById("browse");
      if (!document.getElementById("browse")) return;  // not found (yet): try again with the next snapshot
      wireBrowser();
      routeKey = key;
      lastHw = hw;
      loadMessages(parts, query);
    } else if (hw !== lastHw && !query.get("offset") && !query.get("time")) {
      lastHw = hw;  // newest-first: new records appear as they are produced
      loadMessages(parts, query);
    }
    return;
  }
  routeKey = key;
  const scrolled = window.scrollY;
  if (page === "cluster") view.innerHTML = viewCluster();
  else if (page === "map") view.innerHTML = viewMap(query);
  else if (page === "topics" && parts[1] !== undefined) view.innerHTML = viewTopic(parts[1], query);
  else if (page === "topics") view.innerHTML = viewTopics();
  else if (page === "groups" && parts[1] !== undefined) view.innerHTML = viewGroup(parts[1]);
  else if (page === "groups") view.innerHTML = viewGroups();
  else if (page in onDemandViews) {
    view.innerHTML = onDemandViews[page]();
    loadOnDemand(page);
  }
  else view.innerHTML = notFound(`The console has no page <b>${esc(location.hash)}</b>.`);
  document.getElementById("actions").hidden = !!view.querySelector("[data-testid=not-found]");
  window.scrollTo(0, scrolled);
}

// One WebSocket per tab (an EventSource per tab would use up the browser's 6 connections per host).
function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api/live`);
  ws.onopen = () => { connected = true; render(); };
  ws.onmessage = (e) => { snap = JSON.parse(e.data); connected = true; render(); };
  ws.onclose = () => { connected = false; render(); setTimeout(connect, 1000); };
}

setInterval(() => { const page = route().parts[0] || ""; if (page in onDemandViews && connected) loadOnDemand(page); }, 2000);
document.getElementById("view").addEventListener("click", async (e) => {  // an ACL's Delete button
  const button = e.target.closest("button[data-acl]");
  if (!button) return;
  const binding = JSON.parse(button.dataset.acl), status = document.querySelector("[data-testid=acl-delete-status]");
  if (!confirm(`Delete the ACL: ${aclText(binding)}?`)) return;
  try {
    await send("POST", "/api/acls/delete", binding);
    status.className = "status ok";
    status.textContent = `deleted: ${aclText(binding)}`;
    await loadOnDemand("acls");
  } catch (err) {
    status.textContent = err.message;
    status.classList.add("err");
  }
});
window.addEventListener("hashchange", () => {
  routeKey = "";
  for (const k of Object.keys(configCache)) delete configCache[k];
  render();
});
connect();
