#!/usr/bin/env node
/** The `quackscale` command. Exit status: 0 success, 1 failure, 2 bad usage or configuration. */
import { runCli } from './commands.js';

process.exitCode = await runCli(process.argv.slice(2));
