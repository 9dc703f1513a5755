export { CliError, EXIT, type ExitCode, exitCodeOf } from './exit.js';
export { createProgram, run } from './program.js';
