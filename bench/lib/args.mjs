// Command-line options as `--name value` pairs (a bare `--flag` is true).
export function parseArgs(argv = process.argv.slice(2)) {
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`Unexpected argument '${arg}' (options are --name value)`);
    const name = arg.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) options[name] = true;
    else {
      options[name] = next;
      i++;
    }
  }
  return options;
}

export function intOption(options, name, fallback) {
  const value = options[name] ?? fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed)) throw new Error(`--${name} must be an integer, got '${value}'`);
  return parsed;
}

/** A case prints exactly one result line; the runner picks it out of the child's stdout. */
export const resultPrefix = 'RESULT ';

export function printResult(result) {
  process.stdout.write(`${resultPrefix}${JSON.stringify(result)}\n`);
}
