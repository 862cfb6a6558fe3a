/**
 * The dashboard's stylesheet and its one script, served as files so the pages can
 * run under a Content-Security-Policy without 'unsafe-inline'. The script listens to
 * the live stream (SSE) and swaps the panels the server rendered, and keeps the
 * session's action key (access.ts) in this origin's local storage for form posts.
 */
import type { Hono } from 'hono';

export const CSS_PATH = '/assets/dashboard.css';
export const JS_PATH = '/assets/dashboard.js';

const CSS = `
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f8f9fb; --card: #fff;
  --clean: #2e9d5b; --messy: #d99a1e; --failed: #d14343; --accent: #3565d8; --add: #e6ffec; --del: #ffebe9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; gap: 18px; align-items: center; padding: 10px 20px; background: #1d2330; color: #fff; }
header.top a { color: #cfd6e4; text-decoration: none; } header.top a.here { color: #fff; font-weight: 600; }
header.top .brand { font-weight: 700; color: #fff; margin-right: 12px; }
header.top .who { margin-left: auto; color: #9aa4b8; display: flex; gap: 10px; align-items: center; }
header.top form { margin: 0; } header.top button { background: none; border: 1px solid #5b6477; color: #cfd6e4; border-radius: 4px; cursor: pointer; }
main { padding: 16px 20px 40px; max-width: 1400px; }
h1 { font-size: 20px; margin: 4px 0 14px; } h2 { font-size: 16px; margin: 22px 0 8px; } h3 { font-size: 14px; margin: 14px 0 6px; }
a { color: var(--accent); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin-bottom: 14px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 14px; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.held { padding: 6px 10px; border-radius: 4px; margin: 0 0 8px; }
.muted { color: var(--muted); } .small { font-size: 12px; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; } .chip { border: 1px solid var(--line); border-radius: 12px; padding: 2px 10px; background: var(--card); text-decoration: none; color: var(--fg); }
.chip b { margin-left: 4px; } .chip.on { border-color: var(--accent); }
.state { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; background: #eef1f6; white-space: nowrap; }
.state-pushed, .state-resolved, .o-clean { background: #e3f5ea; color: #1f6b3e; }
.state-failed, .state-regressed, .o-failed { background: #fdeaea; color: #9b2c2c; }
.state-awaiting_approval, .state-needs_human, .o-messy { background: #fdf3dc; color: #8a5a00; }
.state-running { background: #e6eefc; color: #23449a; }
.flash { padding: 8px 12px; border-radius: 6px; margin-bottom: 12px; } .flash.ok { background: #e3f5ea; } .flash.err { background: #fdeaea; }
pre { background: #f3f4f7; padding: 8px 10px; border-radius: 4px; overflow: auto; max-height: 420px; white-space: pre-wrap; word-break: break-word; margin: 6px 0; }
pre.tail { max-height: 160px; font-size: 12px; background: #161b26; color: #d7dce6; }
.plan { white-space: pre-wrap; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; } .kv dt { color: var(--muted); } .kv dd { margin: 0; }
.actions { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0; } .actions form { margin: 0; display: flex; gap: 6px; }
button, .btn { font: inherit; padding: 4px 12px; border-radius: 4px; border: 1px solid #c3c9d4; background: #fff; cursor: pointer; }
button.primary { background: var(--clean); border-color: var(--clean); color: #fff; } button.danger { color: var(--failed); border-color: #e7b4b4; }
button:disabled { opacity: .5; cursor: not-allowed; }
input, select { font: inherit; padding: 3px 6px; border: 1px solid #c3c9d4; border-radius: 4px; }
form.filters { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; } form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
.live-dot { display: inline-block; width: 8px; height: 8px; border-radius: 4px; background: #9aa4b8; margin-right: 4px; } .live-dot.on { background: var(--clean); }
table.diff { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; table-layout: fixed; }
table.diff td { border: 0; padding: 0 6px; white-space: pre-wrap; word-break: break-all; }
table.diff col.ln { width: 48px; } table.diff td.ln { color: var(--muted); text-align: right; user-select: none; }
table.diff td.add { background: var(--add); } table.diff td.del { background: var(--del); } table.diff td.none { background: #f6f7f9; }
table.diff tr.hunk td { background: #eef3fd; color: var(--muted); padding: 2px 6px; }
.diff-file { margin: 10px 0 18px; } .diff-file h3 { font-family: ui-monospace, monospace; font-size: 13px; }
.hidden-char { background: #fde68a; color: #7c2d12; border-radius: 3px; padding: 0 2px; font-size: 10px; }
.hidden-warning { background: #fff7ed; border: 1px solid #fdba74; color: #7c2d12; padding: 4px 8px; border-radius: 4px; }
svg.chart { width: 100%; height: auto; max-width: 720px; display: block; }
svg.chart text { font-size: 11px; fill: var(--muted); } svg.chart .axis { stroke: var(--line); }
svg.chart .s-clean { fill: var(--clean); } svg.chart .s-messy { fill: var(--messy); } svg.chart .s-failed { fill: var(--failed); }
svg.chart .s-a { fill: var(--accent); } svg.chart .s-b { fill: var(--messy); } svg.chart .s-occ { fill: #7c8aa5; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); } .legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
.legend .s-clean { background: var(--clean); } .legend .s-messy { background: var(--messy); } .legend .s-failed { background: var(--failed); }
.legend .s-a { background: var(--accent); } .legend .s-b { background: var(--messy); }
.stat { display: inline-block; margin-right: 26px; } .stat b { display: block; font-size: 20px; }
.login { max-width: 360px; margin: 80px auto; } .login label { display: block; margin: 10px 0 4px; } .login input { width: 100%; }
.local-key { max-width: 560px; } .local-key label { display: block; margin: 10px 0 4px; } .local-key input { width: 100%; margin-bottom: 8px; }
.tests-new { color: var(--failed); font-weight: 600; } .priority { border-bottom: 1px dotted var(--muted); cursor: help; }
ol.timeline { list-style: none; padding: 0; margin: 0; } ol.timeline li { padding: 4px 0 4px 14px; border-left: 2px solid var(--line); }
ol.timeline time { color: var(--muted); font-size: 12px; margin-right: 8px; }
details.session { border-top: 1px solid var(--line); padding: 6px 0; } details.session > summary { cursor: pointer; }
details.session .end { display: inline-block; border-radius: 10px; padding: 0 8px; font-size: 12px; background: #e3f5ea; color: #1f6b3e; }
details.session .end.end-bad { background: #fdeaea; color: #9b2c2c; } details.session .end.end-running { background: #e8f0fe; color: #1a4f9c; }
ol.transcript { list-style: none; padding: 0; margin: 6px 0; font-size: 13px; }
ol.transcript li { display: grid; grid-template-columns: 56px 1fr; gap: 8px; padding: 3px 0; border-bottom: 1px solid var(--line); }
ol.transcript .t-kind { color: var(--muted); font-size: 11px; text-transform: uppercase; letter-spacing: .03em; padding-top: 2px; }
ol.transcript .t-body { white-space: pre-wrap; word-break: break-word; }
ol.transcript code, ol.transcript .t-arg { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
ol.transcript pre.t-out { margin: 0; padding: 4px 8px; max-height: 160px; font-size: 12px; }
ol.transcript .t-error .t-kind, ol.transcript .t-denial .t-kind { color: var(--failed); font-weight: 600; }
ol.transcript .t-error pre.t-out { background: #fdeaea; }
`;

/**
 * Live panels: the page names its stream in data-live; each `part` event carries the
 * id of a server-rendered panel and its new HTML (escaped on the server by JSX).
 */
const JS = `(() => {
  // The session's action key lives in this origin's storage only (a cookie would also go
  // to every other port of this host): set by the signed-in page, added to each form post.
  const KEY = 'bugbot-action-key';
  const signedIn = document.getElementById('signed-in');
  if (signedIn) {
    try { localStorage.setItem(KEY, signedIn.getAttribute('data-action-key') || ''); } catch (e) {}
    location.replace(signedIn.getAttribute('data-next') || '/');
    return;
  }
  document.addEventListener('submit', (e) => {
    const field = e.target && e.target.querySelector && e.target.querySelector('input[name=_action]');
    if (field) { try { field.value = localStorage.getItem(KEY) || ''; } catch (err) {} }
    if (e.target && e.target.getAttribute && e.target.getAttribute('action') === '/logout') { try { localStorage.removeItem(KEY); } catch (err) {} }
  }, true);
  const root = document.querySelector('[data-live]');
  if (!root || !window.EventSource) return;
  const dot = document.getElementById('live-dot');
  const es = new EventSource(root.getAttribute('data-live'));
  es.onopen = () => dot && dot.classList.add('on');
  es.onerror = () => dot && dot.classList.remove('on');
  es.addEventListener('part', (e) => {
    const part = JSON.parse(e.data);
    const el = document.getElementById(part.id);
    if (el) el.innerHTML = part.html;
  });
})();
`;

export function registerAssets(app: Hono): void {
  // Public: the login page needs them and they hold nothing about the installation.
  app.get(CSS_PATH, (c) => c.body(CSS, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'max-age=300' }));
  app.get(JS_PATH, (c) => c.body(JS, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'max-age=300' }));
}
