// The example page: join, fetch a CSV over the tailnet, render it. The bundle is dist/browser/quackscale.js
// (npm run build), which serve.mjs hands out next to this file.
import { Tailnet } from './quackscale.js';

const status = document.getElementById('status');
const table = document.getElementById('table');
const say = (text) => {
  status.textContent = text;
};

/** RFC 4180 CSV: quoted fields, doubled quotes, CRLF or LF. */
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') field += text[i++];
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n') row.push(field), rows.push(row), (row = []), (field = '');
    else if (c !== '\r') field += c;
  }
  if (field !== '' || row.length > 0) row.push(field), rows.push(row);
  return rows;
}

function render(rows) {
  table.replaceChildren();
  rows.forEach((cells, i) => {
    const tr = table.insertRow();
    for (const cell of cells) {
      const td = document.createElement(i === 0 ? 'th' : 'td');
      td.textContent = cell;
      tr.append(td);
    }
  });
}

let tn;
document.getElementById('join').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    await tn?.close();
    tn = new Tailnet({
      controlURL: f.get('controlURL'),
      authKey: f.get('authKey') || undefined,
      controlKey: f.get('controlKey') || undefined,
      hostname: 'csv-page',
      ephemeral: true,
      onAuthURL: (url) => say(`approve this node: ${url}`),
    });
    say('joining…');
    const st = await tn.up();
    say(`joined as ${st.self.addresses[0]}; fetching…`);
    const t0 = performance.now();
    const res = await tn.fetch(f.get('csv'));
    const text = await res.text();
    const rows = parseCsv(text);
    render(rows.slice(0, 201));
    say(`HTTP ${res.status}: ${rows.length - 1} rows, ${text.length} bytes in ${Math.round(performance.now() - t0)} ms` +
      (rows.length > 201 ? ' (first 200 shown)' : ''));
  } catch (err) {
    say(`failed: ${err.message}`);
  }
});
