/**
 * The origin allowlist: the browser may reach only the worker's own dev server(s).
 * The same policy answers for tool input (browser_navigate, dev-login URLs), for every
 * request the page makes (the route guard) and for every connection the guard proxy
 * is asked to open.
 */
import { ToolError } from '../shared/tool.ts';

/** Default ports, so `127.0.0.1:80` in a CONNECT line matches `http://127.0.0.1`. */
const DEFAULT_PORT: Record<string, string> = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443' };

/** Origins allowed for http(s) requests, and the host:port pairs they imply for tunnels. */
export class OriginPolicy {
  private readonly allowed: Set<string>;
  private readonly authorities: Set<string>;

  constructor(readonly origins: readonly string[]) {
    this.allowed = new Set(origins);
    this.authorities = new Set(
      origins.map((o) => {
        const u = new URL(o);
        // An IPv6 host without its brackets, as allowsAuthority compares it.
        return `${u.hostname.replace(/^\[|\]$/g, '')}:${u.port || DEFAULT_PORT[u.protocol]}`;
      }),
    );
  }

  /** Whether a request to `url` may leave the browser. WebSockets count as their http origin. */
  allows(url: string | URL): boolean {
    let u: URL;
    try {
      u = typeof url === 'string' ? new URL(url) : url;
    } catch {
      return false;
    }
    const proto = u.protocol === 'ws:' ? 'http:' : u.protocol === 'wss:' ? 'https:' : u.protocol;
    if (proto !== 'http:' && proto !== 'https:') return false;
    return this.allowed.has(`${proto}//${u.host}`);
  }

  /** Whether the proxy may open a tunnel (CONNECT) to `host:port`. */
  allowsAuthority(host: string, port: string): boolean {
    return this.authorities.has(`${host.replace(/^\[|\]$/g, '')}:${port}`);
  }

  /** "allowed origins: http://127.0.0.1:4101" — appended to every refusal. */
  describe(): string {
    return this.origins.length
      ? `allowed origins: ${this.origins.join(', ')}`
      : 'no origins are allowed (mcp.browser.origins is empty; the harness sets it to the worker dev server)';
  }

  /**
   * Resolves tool input to a URL the browser may open: an absolute URL on an allowed
   * origin, a path (resolved against `base` when that is allowed, else the first
   * allowed origin), or about:blank. Anything else throws a ToolError naming the
   * allowed origins.
   */
  resolve(input: string, base?: string): URL {
    const s = input.trim();
    if (s === 'about:blank') return new URL(s);
    if (s.startsWith('/') && !s.startsWith('//')) {
      const root = base && this.allows(base) ? new URL(base).origin : this.origins[0];
      if (!root) throw new ToolError(`Cannot open the path '${s}': ${this.describe()}.`);
      // Checked like any URL: '/\\host:port/' is a path to no one but the URL parser,
      // which reads a backslash as a slash and so another host.
      const url = new URL(s, root);
      if (!this.allows(url)) throw new ToolError(`Refused to open ${url.href}: it is outside the dev server; ${this.describe()} (and about:blank).`);
      return url;
    }
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      throw new ToolError(`'${s}' is not a URL or a path starting with '/'; ${this.describe()}.`);
    }
    if (!this.allows(url)) {
      throw new ToolError(`Refused to open ${url.href}: it is outside the dev server; ${this.describe()} (and about:blank).`);
    }
    return url;
  }
}
