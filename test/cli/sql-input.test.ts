// When the shell of `quackscale sql` runs what has been typed: at a `;` outside strings,
// quoted identifiers, comments and dollar quotes, as DuckDB's CLI does.
import { describe, expect, it } from 'vitest';
import { endsStatement, parseDotCommand } from '../../src/cli/sql-input.js';

describe('endsStatement', () => {
  it('ends at a top-level semicolon, with whitespace or comments after it', () => {
    for (const sql of [
      'SELECT 1;',
      'SELECT 1;  ',
      'SELECT 1; -- done',
      'SELECT 1; /* c */',
      'SELECT\n1\n;\n',
      'SELECT 1; SELECT 2;',
    ]) {
      expect(endsStatement(sql), sql).toBe(true);
    }
  });

  it('goes on inside strings, identifiers, comments and dollar quotes, or without a semicolon', () => {
    for (const sql of [
      'SELECT 1',
      "SELECT 'a;",
      "SELECT 'it''s;",
      'SELECT "col;',
      'SELECT 1 -- ;',
      'SELECT /* ; */ 1',
      'SELECT /* ;',
      'SELECT $$ ; $$',
      'SELECT $tag$ ;',
      'SELECT 1; SELECT 2',
    ]) {
      expect(endsStatement(sql), sql).toBe(false);
    }
    expect(endsStatement("SELECT 'it''s; fine';")).toBe(true);
    expect(endsStatement('SELECT "a""b;";')).toBe(true);
    expect(endsStatement('SELECT $x$ ; $x$;')).toBe(true);
  });
});

describe('parseDotCommand', () => {
  it('splits the name and its arguments, quoted ones whole', () => {
    expect(parseDotCommand('.mode csv')).toEqual({ name: 'mode', args: ['csv'] });
    expect(parseDotCommand('  .read "my file.sql" ')).toEqual({ name: 'read', args: ['my file.sql'] });
    expect(parseDotCommand('SELECT 1')).toBeUndefined();
  });
});
