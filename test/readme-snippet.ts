import { readFileSync } from 'node:fs';

/** The README's "Twenty lines" example, as printed (the code between its markers, without the fence). */
export function twentyLines(): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const section = readme.split('<!-- twenty-lines:start -->')[1]?.split('<!-- twenty-lines:end -->')[0];
  const code = section === undefined ? undefined : /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (code === undefined) throw new Error('README.md has no ```ts block between the twenty-lines markers');
  return code;
}
