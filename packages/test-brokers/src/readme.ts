/** Reading the Markdown tables the READMEs keep in step with the code (the tests that check them). */

/** A Markdown table's cells, row by row, whatever its column padding (formatters align it). */
export function tableCells(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .filter((line) => line.trim().startsWith('|') && !/^\|[\s|:-]+\|$/.test(line.trim()))
    .map((line) =>
      line
        .trim()
        .replace(/^\||\|$/g, '')
        .split('|')
        .map((cell) => cell.trim()),
    );
}

/** The text between `<!-- name:start … -->` and `<!-- name:end -->`; throws when the markers are missing. */
export function markedSection(markdown: string, name: string): string {
  const start = markdown.indexOf(`<!-- ${name}:start`);
  const end = markdown.indexOf(`<!-- ${name}:end -->`);
  if (start < 0 || end < start) throw new Error(`no <!-- ${name}:start --> … <!-- ${name}:end --> section`);
  return markdown.slice(markdown.indexOf('\n', start) + 1, end).trim();
}

/** The text of a `## heading` section, up to the next heading of the same or a higher level. */
export function headingSection(markdown: string, heading: string): string {
  const lines = markdown.split('\n');
  const at = lines.findIndex((line) => line.trim() === heading);
  if (at < 0) throw new Error(`no "${heading}" section`);
  const level = heading.indexOf(' ');
  const end = lines.findIndex((line, i) => i > at && /^#+ /.test(line) && line.indexOf(' ') <= level);
  return lines.slice(at + 1, end < 0 ? undefined : end).join('\n');
}
