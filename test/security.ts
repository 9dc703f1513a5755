// Shared by the security tests (tls.test.ts, access.test.ts).

/** Every text an error exposes, through its cause chain: message, string form, stack, issues. */
export function errorTexts(error: unknown, depth = 0): string[] {
  if (!(error instanceof Error) || depth > 10) return [String(error)];
  const issues = (error as { issues?: unknown }).issues;
  return [
    error.message,
    String(error),
    error.stack ?? '',
    ...(Array.isArray(issues) ? issues.map(String) : []),
    ...(error.cause === undefined ? [] : errorTexts(error.cause, depth + 1)),
  ];
}
