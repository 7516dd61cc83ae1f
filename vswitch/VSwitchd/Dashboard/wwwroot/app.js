'use strict';
// The dashboard reads the management API like any client; vswitchd serves this file from its own assembly.
const $ = (s) => document.querySelector(s);
const el = (tag, attrs = {}, text) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const svg = (tag, attrs = {}, text) => {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
};
const human = (v, unit = '') => v >= 1e9 ? (v / 1e9).toFixed(2) + ' G' + unit : v >= 1e6 ? (v / 1e6).toFixed(2) + ' M' + unit
  : v >= 1e3 ? (v / 1e3).toFixed(1) + ' k' + unit : Math.round(v) + (unit ? ' ' + unit : '');

async function api(path, options) {
  const r = await fetch(path, options);
  const text = await r.text();
  const body = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error(body && body.error ? body.error : r.status + ' ' + r.statusText);
  return body;
}

const rates = {};          // port name -> last rates from the stream
let ports = [];

async function loadTopology() {
  const show = await api('/v1/show');
  let overlay = { networks: [] };
  try { overlay = await api('/v1/overlay'); } catch (e) { /* no overlay: nothing to draw for it */ }
  ports = show.ports;
  $('#summary').textContent = `version ${show.version}, up ${Math.round(show.uptimeSeconds)} s, ${show.threads} datapath thread(s), `
    + `${show.networks.length} network(s), ${show.ports.length} port(s)`;
  drawTopology(show, overlay);
  drawPorts();
}

function drawTopology(show, overlay) {
  const root = $('#topology');
  root.replaceChildren();
  const nets = show.networks;
  const width = Math.max(root.clientWidth || 900, 300);
  const slot = width / Math.max(nets.length, 1);
  nets.forEach((n, i) => {
    const cx = slot * i + slot / 2, w = Math.min(slot - 20, 260);
    root.append(svg('rect', { class: 'net', x: cx - w / 2, y: 20, width: w, height: 44, rx: 8 }));
    const label = n.name + (n.subnet ? ' ' + n.subnet : '') + (n.vni ? ' vni ' + n.vni : '');
    root.append(svg('text', { x: cx, y: 47, 'text-anchor': 'middle' }, label));
    const members = show.ports.filter(p => p.network === n.name);
    const step = w / Math.max(members.length, 1);
    members.forEach((p, j) => {
      const px = cx - w / 2 + step * j + step / 2, py = 150;
      root.append(svg('line', { x1: px, y1: 64, x2: px, y2: py - 16 }));
      root.append(svg('circle', { class: 'port' + (p.state && p.state !== 'up' ? ' down' : ''), cx: px, cy: py, r: 16, 'data-port': p.name }));
      root.append(svg('text', { x: px, y: py + 32, 'text-anchor': 'middle' }, p.name));
      // Neighbours' rate labels alternate in height so that they do not run into each other.
      root.append(svg('text', { class: 'rate', x: px, y: py + 46 + (j % 2) * 14, 'text-anchor': 'middle', 'data-rate': p.name }, ''));
    });
    const ov = (overlay.networks || []).find(o => o.name === n.name);
    (ov ? ov.vteps : []).forEach((v, k) => {
      const vx = cx + w / 2 - 40 - k * 90, vy = 230;
      root.append(svg('line', { x1: vx + 35, y1: 64, x2: vx + 35, y2: vy - 14 }));
      root.append(svg('rect', { class: 'vtep', x: vx, y: vy - 14, width: 70, height: 24, rx: 4 }));
      root.append(svg('text', { x: vx + 35, y: vy + 2, 'text-anchor': 'middle' }, 'VTEP ' + v));
    });
  });
}

function drawPorts() {
  const body = $('#ports tbody');
  body.replaceChildren();
  for (const p of ports) {
    const r = rates[p.name] || {};
    const tr = el('tr', { 'data-port': p.name });
    tr.append(el('td', {}, p.name), el('td', {}, p.network), el('td', {}, p.type), el('td', {}, p.state || ''));
    for (const [k, unit] of [['rxPps', ''], ['rxBps', 'bit/s'], ['txPps', ''], ['txBps', 'bit/s']])
      tr.append(el('td', { class: 'num', 'data-field': k }, r[k] === undefined ? '–' : human(r[k], unit)));
    tr.append(el('td', { class: 'num', 'data-field': 'drops' }, r.drops === undefined ? '–' : String(r.drops)));
    body.append(tr);
  }
}

function listenRates() {
  const source = new EventSource('/v1/rates/stream');
  source.addEventListener('rates', (ev) => {
    const data = JSON.parse(ev.data);
    for (const p of data.ports) {
      rates[p.name] = p;
      const row = document.querySelector(`#ports tr[data-port="${CSS.escape(p.name)}"]`);
      if (row) {
        row.querySelector('[data-field=rxPps]').textContent = human(p.rxPps);
        row.querySelector('[data-field=rxBps]').textContent = human(p.rxBps, 'bit/s');
        row.querySelector('[data-field=txPps]').textContent = human(p.txPps);
        row.querySelector('[data-field=txBps]').textContent = human(p.txBps, 'bit/s');
        row.querySelector('[data-field=drops]').textContent = String(p.drops);
        row.dataset.rxBps = p.rxBps;
      }
      const label = document.querySelector(`#topology [data-rate="${CSS.escape(p.name)}"]`);
      if (label) label.textContent = `${human(p.rxBps, 'b/s')} in / ${human(p.txBps, 'b/s')} out`;
    }
    const badge = $('#live');
    badge.textContent = 'rates: live';
    badge.classList.add('on');
  });
  source.onerror = () => { $('#live').textContent = 'rates: reconnecting'; $('#live').classList.remove('on'); };
}

// The filter last submitted: the periodic refresh must not send what is half typed in the box.
let flowFilter = '';

async function loadFlows() {
  const filter = flowFilter;
  $('#flow-error').textContent = '';
  try {
    const flows = await api('/v1/flows' + (filter ? '?match=' + encodeURIComponent(filter) : ''));
    const body = $('#flows tbody');
    body.replaceChildren();
    for (const f of flows.slice(0, 200)) {
      const tr = el('tr');
      tr.append(el('td', { class: 'num' }, String(f.thread)), el('td', { class: 'flow' }, f.flow), el('td', { class: 'flow' }, f.actions),
        el('td', { class: 'num' }, String(f.packets)), el('td', { class: 'num' }, String(f.bytes)), el('td', { class: 'num' }, String(f.idleSeconds)));
      body.append(tr);
    }
  } catch (e) { $('#flow-error').textContent = e.message; }
}

async function loadDrops() {
  const stats = await api('/v1/stats');
  const body = $('#drops tbody');
  body.replaceChildren();
  for (const s of stats.stages)
    for (const d of s.drops) {
      const tr = el('tr');
      tr.append(el('td', {}, s.name), el('td', {}, d.reason + (d.expected ? ' (expected)' : '')), el('td', { class: 'num' }, String(d.packets)));
      body.append(tr);
    }
  if (!body.children.length) {
    const tr = el('tr');
    tr.append(el('td', { colspan: 3 }, 'no drops'));
    body.append(tr);
  }
}

async function trace(ev) {
  ev.preventDefault();
  const out = $('#trace-result');
  out.replaceChildren();
  try {
    const t = await api('/v1/trace', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ spec: $('#trace-spec').value }) });
    out.append(el('div', {}, 'Flow: ' + t.flow));
    const ol = el('ol', { class: 'steps' });
    for (const s of t.steps) ol.append(el('li', {}, s.detail ? `${s.stage}: ${s.detail}` : s.stage));
    out.append(ol);
    out.append(el('div', { class: 'final', id: 'trace-actions' }, 'Final actions: ' + (t.actions || 'drop')));
    if (t.dropReason) out.append(el('div', { class: 'error' }, 'Drop reason: ' + t.dropReason));
  } catch (e) { out.append(el('div', { class: 'error' }, e.message)); }
}

$('#flow-form').addEventListener('submit', (ev) => { ev.preventDefault(); flowFilter = $('#flow-filter').value.trim(); loadFlows(); });
$('#trace-form').addEventListener('submit', trace);

(async () => {
  try {
    await loadTopology();
    listenRates();
    await Promise.all([loadFlows(), loadDrops()]);
    setInterval(() => { loadFlows(); loadDrops().catch(() => {}); }, 3000);
    setInterval(() => loadTopology().catch(() => {}), 10000);
  } catch (e) { $('#summary').textContent = 'cannot read vswitchd: ' + e.message; }
})();
