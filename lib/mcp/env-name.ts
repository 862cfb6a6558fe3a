/** A setting that names an environment variable (`*Env`): the name, never the value. */
import { z } from 'zod';

export const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name (A-Z, 0-9, _)');
