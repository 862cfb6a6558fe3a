import { createApp, logInfo } from './server.ts';
import { seedStore } from './store.ts';

const port = Number(process.env.PORT ?? 3000);
const server = createApp(seedStore());
server.listen(port, '127.0.0.1', () => logInfo('listening', { port }));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => server.close(() => process.exit(0)));
