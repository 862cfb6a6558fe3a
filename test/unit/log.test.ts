/**
 * The structured logger: one JSON object a line, at the level asked; a level it does
 * not know is said once, not taken silently.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../control/log.ts';

test('an unknown BUGBOT_LOG_LEVEL is said once, and logging goes on at info', () => {
  const before = process.env.BUGBOT_LOG_LEVEL;
  process.env.BUGBOT_LOG_LEVEL = 'loud';
  try {
    const lines: string[] = [];
    const logger = createLogger({ write: (l) => lines.push(l) });
    logger.child({ component: 'x' }).debug('hidden');
    logger.info('shown');
    createLogger({ write: (l) => lines.push(l) }).info('again');
    const parsed = lines.map((l) => JSON.parse(l) as { level: string; msg: string });
    assert.deepEqual(
      parsed.map((p) => [p.level, p.msg]),
      [
        ['warn', 'BUGBOT_LOG_LEVEL="loud" is not a level (debug, info, warn, error): logging at info'],
        ['info', 'shown'],
        ['info', 'again'],
      ],
    );
  } finally {
    if (before === undefined) delete process.env.BUGBOT_LOG_LEVEL;
    else process.env.BUGBOT_LOG_LEVEL = before;
  }
});
