/**
 * Standard Schema (https://standardschema.dev) is implemented by zod 3.24+, zod 4, valibot and
 * arktype, so any of them validates payloads without Omnibus depending on one. The interface is
 * copied here, type-only, as its spec recommends.
 */
import { ValidationError } from './errors.js';

export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1;
    readonly vendor: string;
    readonly validate: (
      value: unknown,
    ) => StandardSchemaV1.Result<Output> | Promise<StandardSchemaV1.Result<Output>>;
    readonly types?: { readonly input: Input; readonly output: Output } | undefined;
  };
}

export declare namespace StandardSchemaV1 {
  type Result<Output> = SuccessResult<Output> | FailureResult;
  interface SuccessResult<Output> {
    readonly value: Output;
    readonly issues?: undefined;
  }
  interface FailureResult {
    readonly issues: ReadonlyArray<Issue>;
  }
  interface Issue {
    readonly message: string;
    readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
  }
}

/** Validates `value`; returns the schema's output or throws a `ValidationError` listing every issue. */
export async function validatePayload<T>(
  schema: StandardSchemaV1<unknown, T> | undefined,
  value: unknown,
  what: string,
): Promise<T> {
  if (schema === undefined) return value as T;
  const result = await schema['~standard'].validate(value);
  if (result.issues === undefined) return result.value;
  throw new ValidationError(`${what} does not match its schema`, result.issues.map(formatIssue));
}

function formatIssue(issue: StandardSchemaV1.Issue): string {
  const path = (issue.path ?? [])
    .map((segment) => String(typeof segment === 'object' && segment !== null ? segment.key : segment))
    .join('.');
  return path === '' ? issue.message : `${path}: ${issue.message}`;
}
