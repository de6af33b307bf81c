/** node:path in the browser bundle: POSIX join for names that never reach a file system. */
export const join = (...parts: string[]): string =>
  parts
    .filter((p) => p !== '')
    .join('/')
    .replace(/\/+/g, '/');
export const dirname = (p: string): string => p.replace(/\/[^/]*$/, '') || '/';
export const basename = (p: string): string => p.replace(/^.*\//, '');
export const resolve = join;
export default { join, dirname, basename, resolve };
