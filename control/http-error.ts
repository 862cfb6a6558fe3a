/**
 * The one HTTP error type. Handlers throw it; the error handler in app.ts turns it
 * into `{ error: { code, message, details? } }` with the status.
 */
export class HttpError extends Error {
  readonly status: 400 | 401 | 403 | 404 | 406 | 409 | 413 | 415 | 422 | 429 | 500 | 503;
  readonly code: string;
  readonly details: unknown;

  constructor(status: HttpError['status'], code: string, message: string, details?: unknown) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const badRequest = (message: string, details?: unknown) => new HttpError(400, 'bad_request', message, details);
export const unauthorized = (message: string) => new HttpError(401, 'unauthorized', message);
export const notFound = (message: string) => new HttpError(404, 'not_found', message);
/**
 * A well-formed delivery whose content bugbot declines (a bounce, a mail with no text of its
 * own): Mailgun retries any other refusal for 8 hours, and a 406 stops it.
 */
export const notAcceptable = (message: string) => new HttpError(406, 'not_acceptable', message);

/** Parse a request body as JSON; a 400 that says why when it is not. */
export function parseJsonText(text: string): unknown {
  if (!text.trim()) throw badRequest('empty body: expected a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw badRequest(`body is not valid JSON: ${(err as Error).message}`);
  }
}
