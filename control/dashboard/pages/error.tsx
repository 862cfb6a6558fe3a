/**
 * The error page a browser gets from the dashboard: the status, the message (escaped
 * like every text child), what to do about it when there is something, and the way back.
 */
import type { Child } from 'hono/jsx';
import { Layout, type Viewer } from '../layout.tsx';

export function ErrorPage(props: { status: number; message: string; viewer?: Viewer | undefined; help?: Child }) {
  return (
    <Layout title={String(props.status)} here="" viewer={props.viewer}>
      <div id="error" data-status={props.status}>
        <h1>{String(props.status)}</h1>
        <p class="message">{props.message}</p>
        {props.help ?? null}
        <p>
          <a href="/">Back to the overview</a>
        </p>
      </div>
    </Layout>
  );
}
