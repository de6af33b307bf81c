/** How `quackscale control …` subcommands end on a control-plane or admin API error. */
import { ControlError } from '../control/errors.js';
import { AdminAPIError } from '../control/server/admin.js';

type Run = (argv: string[]) => Promise<number>;

/** Control-plane and admin API errors end a command with status 1 and their message. */
export function reported(sub: string, run: Run): Run {
  return async (argv) => {
    try {
      return await run(argv);
    } catch (err) {
      if (err instanceof ControlError || err instanceof AdminAPIError) {
        console.error(`quackscale control ${sub}: ${err.message}`);
        return 1;
      }
      throw err;
    }
  };
}
