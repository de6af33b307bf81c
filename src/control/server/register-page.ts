/**
 * The plain-HTTP side of interactive login (Headscale serves the same `/register/<id>` page,
 * hscontrol/handlers.go RegisterHandler, telling the admin which command registers the node):
 * - GET/HEAD /register/<id>: a page saying what is waiting and how to approve it. It never
 *   approves: a link preview, a crawler or a stray click must not log a machine in.
 * - POST /register/<id>/approve (JSON body `{"user"?: "...", "tags"?: ["tag:x"]}`) and
 *   POST /register/<id>/reject, and GET /admin/pending: admin only (admin.ts: the bearer token
 *   from the state dir, from this host).
 */
import type http from 'node:http';
import { type AdminCredential, authorizeAdmin, json, readBody } from './admin.js';
import type { ApproveOptions, InteractiveLogins } from './interactive.js';
import { PendingRegistrationError, parseRegistrationId } from './pending.js';

function escapeHTML(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(res: http.ServerResponse, status: number, title: string, body: string, head: boolean): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // Nothing to run, load or leak: the id is in the URL, so no Referer either.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    'referrer-policy': 'no-referrer',
    'x-robots-tag': 'noindex, nofollow',
    'x-content-type-options': 'nosniff',
  });
  if (head) {
    res.end();
    return;
  }
  res.end(
    `<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">` +
      `<title>${escapeHTML(title)}</title><style>body{font-family:sans-serif;max-width:46em;margin:2em auto;padding:0 1em}` +
      `code,pre{background:#f3f3f3;padding:.2em .4em}</style></head><body><h1>${escapeHTML(title)}</h1>${body}</body></html>\n`,
  );
}

const tooLarge = (max: number) => new PendingRegistrationError('bad-request', `body over ${max} bytes`);

function parseApprove(text: string): ApproveOptions {
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new PendingRegistrationError('bad-request', 'body is not JSON');
  }
  const o = (v ?? {}) as Record<string, unknown>;
  if (typeof o !== 'object' || Array.isArray(o))
    throw new PendingRegistrationError('bad-request', 'body must be an object');
  if (o.user !== undefined && typeof o.user !== 'string')
    throw new PendingRegistrationError('bad-request', 'user must be a string');
  if (o.tags !== undefined && !(Array.isArray(o.tags) && o.tags.every((t) => typeof t === 'string'))) {
    throw new PendingRegistrationError('bad-request', 'tags must be an array of strings');
  }
  return { user: o.user as string | undefined, tags: o.tags as string[] | undefined };
}

const STATUS: Record<PendingRegistrationError['code'], number> = {
  'not-found': 404,
  rejected: 409,
  'too-many': 429,
  'bad-request': 400,
};

/** Serves the paths above; returns false for any other path. */
export async function serveRegisterHTTP(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  logins: InteractiveLogins,
  admin: AdminCredential,
): Promise<boolean> {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  const m = /^\/register\/([^/]+)(?:\/(approve|reject))?\/?$/.exec(path);
  const isList = path === '/admin/pending';
  if (!m && !isList) return false;
  const action = m?.[2];
  if (!action && !isList) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      return true;
    }
    showPage(res, logins, m![1]!, req.method === 'HEAD');
    return true;
  }
  const method = isList ? 'GET' : 'POST';
  if (req.method !== method) {
    res.writeHead(405, { allow: method, 'content-type': 'text/plain' }).end(`use ${method}\n`);
    return true;
  }
  if (!authorizeAdmin(req, res, admin)) return true;
  try {
    if (isList) json(res, 200, { pending: logins.list() });
    else if (action === 'approve')
      json(res, 200, { approved: await logins.approve(m![1]!, parseApprove(await readBody(req, tooLarge))) });
    else {
      logins.reject(m![1]!);
      json(res, 200, { rejected: true });
    }
  } catch (err) {
    if (!(err instanceof PendingRegistrationError)) throw err;
    json(res, STATUS[err.code], { error: err.message });
  }
  return true;
}

function showPage(res: http.ServerResponse, logins: InteractiveLogins, rawId: string, head: boolean): void {
  const id = parseRegistrationId(rawId);
  const reg = id ? logins.opts.pending.get(id) : undefined;
  if (!reg) {
    const text =
      '<p>This login link is unknown or has expired. Run <code>tailscale up</code> (or log in again) for a new one.</p>';
    page(res, 404, 'Login not found', text, head);
    return;
  }
  if (reg.state !== 'pending') {
    page(res, 200, `Login ${reg.state}`, `<p>An admin has ${reg.state} this login.</p>`, head);
    return;
  }
  const hi = reg.input.hostinfo;
  const rows: [string, string][] = [
    ['Hostname', hi?.Hostname || '(none)'],
    ['OS', [hi?.OS, hi?.OSVersion].filter(Boolean).join(' ') || '(unknown)'],
    ['Machine key', `${reg.input.machineKey.slice(0, 20)}…`],
    ['Requested tags', (hi?.RequestTags ?? []).join(', ') || '(none)'],
    ['Ephemeral', reg.input.ephemeral ? 'yes' : 'no'],
    ['Expires', new Date(reg.expires).toISOString()],
  ];
  const table = rows.map(([k, v]) => `<tr><th align="left">${k}</th><td>${escapeHTML(v)}</td></tr>`).join('');
  const url = logins.opts.authURL(reg.id);
  const body =
    `<p>A machine is asking to join this tailnet. It joins only when an admin of this control server approves it; ` +
    `opening this page does not approve it.</p><table>${table}</table>` +
    `<p>To approve it, on the machine running the control server:</p>` +
    `<pre>quackscale control approve --state-dir &lt;the server's state dir&gt; ${escapeHTML(url)}</pre>` +
    `<p>Add <code>--user NAME</code> to register it to a user, <code>--tags tag:a,tag:b</code> to tag it. ` +
    `To refuse it: <code>quackscale control reject --state-dir … ${escapeHTML(url)}</code></p>`;
  page(res, 200, 'Approve this machine?', body, head);
}
