/** The Loki client's public surface, for the loki MCP server and the control plane. */
export { labelsArg, timeRangeArg, toMatchers } from './args.ts';
export { userBreadcrumbs, type BreadcrumbRequest, type Breadcrumbs } from './breadcrumbs.ts';
export { createLokiClient, lokiSecretProblems, type LokiClient, type QueryOptions, type SecretSource } from './client.ts';
export { latestErrors, type LatestErrorsRequest } from './errors.ts';
export { formatResult, plural, type FormatOptions } from './format.ts';
export { checkLimit, checkRawLogQL, type RawQueryRequest } from './guard.ts';
export { buildLogQL, hasPositiveMatcher, quote, validateMatchers } from './logql.ts';
export { resolveTimeRange, type TimeRangeInput } from './time-range.ts';
export { LokiError, type BackendResult, type Direction, type LabelMatcher, type LogEntry, type LogQuery, type TimeRange } from './types.ts';
