/**
 * The one command-line parser, getopt_long's rules: `-p 1`, `-p1`, clustered `-ve`, `--port=1`, `--port 1`,
 * a value taken whatever it starts with (`-n -1`), `--` ending the options. The twins of rdma-core's
 * programs and perftest need exactly these rules (node:util.parseArgs refuses a value starting with a
 * dash), and `rdma-node vm` needs getopt's "+" mode: options end at the first operand, the command.
 */

export interface OptionSpec {
  /** Short letter, e.g. 'p'. */
  short?: string;
  /** Long name, e.g. 'port'. */
  long?: string;
  /** Takes a value. */
  value?: boolean;
}

export interface ParsedOptions {
  /** Every value given, by the option's short letter (or long name when it has none); '' for a flag. */
  values: Map<string, string[]>;
  positionals: string[];
}

const keyOf = (spec: OptionSpec): string => spec.short ?? spec.long!;

export function parseOptions(argv: string[], specs: OptionSpec[], { stopAtOperand = false } = {}): ParsedOptions {
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  const add = (spec: OptionSpec, value: string): void => {
    values.set(keyOf(spec), [...(values.get(keyOf(spec)) ?? []), value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (stopAtOperand && !(arg.startsWith('-') && arg.length > 1)) {
      positionals.push(...argv.slice(i));
      break;
    }
    if (arg.startsWith('--')) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      const spec = specs.find((s) => s.long === name);
      if (!spec) throw new Error(`unrecognized option '${arg}'`);
      if (!spec.value) add(spec, '');
      else if (inline !== undefined) add(spec, inline);
      else if (i + 1 < argv.length) add(spec, argv[++i]!);
      else throw new Error(`option '--${name}' requires an argument`);
    } else if (arg.startsWith('-') && arg.length > 1) {
      // Clustered flags (-ve) and attached values (-p18515) as getopt allows.
      for (let j = 1; j < arg.length; j++) {
        const spec = specs.find((s) => s.short === arg[j]);
        if (!spec) throw new Error(`invalid option -- '${arg[j]}'`);
        if (!spec.value) {
          add(spec, '');
          continue;
        }
        const rest = arg.slice(j + 1);
        if (rest) add(spec, rest);
        else if (i + 1 < argv.length) add(spec, argv[++i]!);
        else throw new Error(`option requires an argument -- '${arg[j]}'`);
        break;
      }
    } else {
      positionals.push(arg);
    }
  }
  return { values, positionals };
}

/** The last value of an option as an integer (C's strtol with base 0: decimal, 0x hex, 0 octal). */
export function intOption(parsed: ParsedOptions, short: string, fallback: number): number {
  const text = parsed.values.get(short)?.at(-1);
  if (text === undefined) return fallback;
  const value = /^0x/i.test(text) ? parseInt(text, 16) : /^0[0-7]+$/.test(text) ? parseInt(text, 8) : Number(text);
  if (!Number.isInteger(value)) throw new Error(`invalid number for -${short}: ${text}`);
  return value;
}

export function flag(parsed: ParsedOptions, short: string): boolean {
  return parsed.values.has(short);
}

export function stringOption(parsed: ParsedOptions, short: string): string | undefined {
  return parsed.values.get(short)?.at(-1);
}
