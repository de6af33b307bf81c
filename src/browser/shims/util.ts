/** node:util in the browser bundle: the custom-inspect symbol keys use to hide secrets. */
export const inspect = Object.assign((v: unknown) => String(v), {
  custom: Symbol.for('nodejs.util.inspect.custom'),
});
export const promisify = <T>(fn: T): T => fn;
export default { inspect, promisify };
