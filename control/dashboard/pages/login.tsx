/**
 * The login form (token, or user name and password), the signed-in page, and on an open
 * loopback dashboard the page that says where this start's local key is.
 */
import { join } from 'node:path';
import { Document as Shell } from '../layout.tsx';

export function LoginPage(props: { next: string; token: boolean; basic: boolean; error?: string | undefined }) {
  return (
    <Shell title="Log in">
      <form class="card login" method="post" action="/login">
        <h1>bugbot dashboard</h1>
        {props.error ? <p class="flash err" role="alert">{props.error}</p> : null}
        <input type="hidden" name="next" value={props.next} />
        {props.token ? (
          <>
            <label for="token">Access token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" />
          </>
        ) : null}
        {props.basic ? (
          <>
            {props.token ? <p class="muted small">or</p> : null}
            <label for="user">User</label>
            <input id="user" name="user" type="text" autocomplete="username" />
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" />
          </>
        ) : null}
        <p>
          <button class="primary" type="submit">
            Log in
          </button>
        </p>
      </form>
    </Shell>
  );
}

/**
 * After a login or the local-key link: hands the session's action key to the dashboard's
 * script, which keeps it in this origin's local storage and goes on to `next`.
 */
export function SignedInPage(props: { next: string; actionKey: string }) {
  return (
    <Shell title="Signed in">
      <div class="card login" id="signed-in" data-action-key={props.actionKey} data-next={props.next}>
        <p>
          Signed in. <a href={props.next}>Continue</a>
        </p>
      </div>
    </Shell>
  );
}

/**
 * Where a person finds the local key that unlocks the actions of an open loopback
 * dashboard, with a form to paste it. The key itself is never shown: the page is open to
 * any program on the machine, and the key is what keeps such programs from acting.
 */
export function LocalKeyHelp(props: { next: string; home: string }) {
  return (
    <div class="card local-key" id="local-key-help">
      <p>
        Looking needs no login here. Approve, skip, requeue and cancel need this start's local key: open the <code>/login?key=…</code> link that{' '}
        <code>bugbot start</code> printed (<code>bugbot status</code> prints it again). The key changes with every start of bugbot, so a link from an earlier start no longer works.
      </p>
      <p>
        The current key is the <code>key</code> field of <code>{join(props.home, 'server.json')}</code>, readable only by the account that runs bugbot. Paste it here:
      </p>
      <form method="get" action="/login">
        <input type="hidden" name="next" value={props.next} />
        <label for="key">Local key</label>
        <input id="key" name="key" type="password" autocomplete="off" />
        <button class="primary" type="submit">
          Unlock actions
        </button>
      </form>
      <p>
        Or <a href={props.next}>continue without</a>.
      </p>
    </div>
  );
}

/** GET /login on an open loopback dashboard, without a key. */
export function LocalKeyPage(props: { next: string; home: string }) {
  return (
    <Shell title="Local key">
      <main>
        <h1>bugbot dashboard</h1>
        <LocalKeyHelp {...props} />
      </main>
    </Shell>
  );
}
