/**
 * The login form (token, or user name and password), the signed-in page and the plain error page.
 */
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

export function ErrorPage(props: { status: number; message: string }) {
  return (
    <Shell title={String(props.status)}>
      <main>
        <h1>{String(props.status)}</h1>
        <p>{props.message}</p>
        <p>
          <a href="/">Overview</a>
        </p>
      </main>
    </Shell>
  );
}
