/**
 * When the shell of `quackscale sql` has a whole statement: like DuckDB's CLI, input is
 * collected line by line until it ends with a `;` that is not inside a string, a quoted
 * identifier, a comment or a dollar-quoted string.
 */

/** Whether `text` ends with a statement terminator at the top level (whitespace and comments after it allowed). */
export function endsStatement(text: string): boolean {
  let lastSignificant = '';
  let i = 0;
  while (i < text.length) {
    const ch = text[i] as string;
    const next = text[i + 1];
    if (ch === "'" || ch === '"') {
      // A quote doubled inside is part of the string ('it''s', "a""b").
      let j = i + 1;
      for (;;) {
        const k = text.indexOf(ch, j);
        if (k < 0) return false;
        if (text[k + 1] === ch) {
          j = k + 2;
          continue;
        }
        i = k + 1;
        break;
      }
      lastSignificant = ch;
      continue;
    }
    if (ch === '-' && next === '-') {
      const nl = text.indexOf('\n', i);
      if (nl < 0) break;
      i = nl + 1;
      continue;
    }
    if (ch === '/' && next === '*') {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) return false;
      i = end + 2;
      continue;
    }
    if (ch === '$') {
      // Dollar quoting ($$…$$ or $tag$…$tag$), as in PostgreSQL and DuckDB.
      const m = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(text.slice(i));
      if (m) {
        const end = text.indexOf(m[0], i + m[0].length);
        if (end < 0) return false;
        i = end + m[0].length;
        lastSignificant = '$';
        continue;
      }
    }
    if (!/\s/.test(ch)) lastSignificant = ch;
    i++;
  }
  return lastSignificant === ';';
}

/** A dot command split into its name and arguments (`.mode csv` → `['mode', ['csv']]`). */
export function parseDotCommand(line: string): { name: string; args: string[] } | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('.')) return undefined;
  const words = [...trimmed.slice(1).matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map(
    (m) => m[1] ?? m[2] ?? m[3] ?? '',
  );
  const [name = '', ...args] = words;
  return { name, args };
}
