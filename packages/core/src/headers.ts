/** Checks on application headers; the `x-omnibus-` names themselves live in envelope.ts. */
import { RESERVED_PREFIX } from './envelope.js';

/** Headers must be a flat record of string values: brokers carry nothing else portably. */
export function validateHeaders(headers: unknown): string[] {
  if (headers === undefined) return [];
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) {
    return ['headers must be an object of string values'];
  }
  const issues: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (name === '' || name.includes('\u0000') || /[\r\n:]/.test(name))
      issues.push(`header name "${name}" is empty or contains ":", CR, LF or NUL`);
    if (typeof value !== 'string') issues.push(`header "${name}" must be a string, got ${typeof value}`);
    if (name.toLowerCase().startsWith(RESERVED_PREFIX))
      issues.push(`header "${name}" uses the reserved prefix ${RESERVED_PREFIX}`);
  }
  return issues;
}
