// The commands and their options, in one table: `usher --help`, `usher <command> --help`, the
// argument parser's usage errors and the shell completions are all made from it, so they agree.
import { parseArgs } from 'node:util';
import { closest } from '../config/suggest.js';

export interface OptionSpec {
  name: string;
  short?: string;
  type: 'string' | 'boolean';
  multiple?: boolean;
  /** The value's placeholder in help ("FILE"). */
  arg?: string;
  help: string;
  /** For completion: the value is a file name. */
  file?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  /** Positional arguments as [min, max], and what they are (for "expected ..."). */
  positionals: [number, number];
  needs?: string;
  options: OptionSpec[];
  /** Paragraphs after the options. */
  notes?: string[];
  examples: string[];
}

const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'boolean', help: 'this help' };
const CONFIG: OptionSpec = { name: 'config', short: 'c', type: 'string', arg: 'FILE', file: true, help: 'YAML (.yaml/.yml), JSON (.json) or JavaScript (.js/.mjs, default export)' };

/** usher plan / apply: where the running usher's admin API is, and how to print its answer. */
const ADMIN_CLIENT_OPTIONS: readonly OptionSpec[] = [
  { name: 'admin', type: 'string', arg: 'ADDRESS', help: "the running usher's admin listener (default: admin.address in FILE, else 127.0.0.1:9901)" },
  { name: 'token', type: 'string', arg: 'TOKEN', help: 'the admin bearer token (default: $USHER_ADMIN_TOKEN, else admin.token in FILE)' },
  { name: 'json', type: 'boolean', help: 'print the admin API answer as JSON' },
];

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'serve',
    summary: 'start serving (without --config: a built-in demo on 127.0.0.1:8080)',
    usage: 'usher serve [--config FILE]\n  usher serve --listen ADDRESS',
    positionals: [0, 0],
    options: [
      { ...CONFIG, help: `${CONFIG.help}; without it, a built-in demo with three upstreams` },
      { name: 'listen', type: 'string', arg: 'ADDRESS', help: 'with the built-in demo only: listen on ADDRESS (host:port) instead of 127.0.0.1:8080' },
      { name: 'workers', type: 'string', arg: 'N', help: 'worker processes: auto (one per CPU) or a number; overrides `workers` in FILE (the demo: 1)' },
      HELP_OPTION,
    ],
    notes: [
      'Signals:\n  SIGTERM, SIGINT     graceful shutdown: stop accepting, finish in-flight requests, exit\n  SIGHUP              reload the config file (so does saving it); an invalid file keeps the old config\n  SIGUSR1             reopen the access log file (log.access_log_file) by its path, after logrotate renamed it\n  (with workers > 1, signal the primary: the pid in the banner)',
      'Logs are JSON lines on stdout; the start-up banner and config warnings go to stderr.',
    ],
    examples: ['usher serve --config usher.yaml', 'usher serve --listen 127.0.0.1:9000'],
  },
  {
    name: 'validate',
    summary: 'check a config file; prints every problem with file:line:col',
    usage: 'usher validate --config FILE',
    positionals: [0, 0],
    options: [{ ...CONFIG, help: `${CONFIG.help} (required)` }, HELP_OPTION],
    notes: ['Exit status 0 when the config is valid (warnings are printed, and allowed), 1 when it is not.'],
    examples: ['usher validate --config usher.yaml'],
  },
  {
    name: 'explain',
    summary: 'which route takes a request, why, and what goes upstream (nothing is sent)',
    usage: 'usher explain --config FILE METHOD URL [-H "name: value"]... [--client-ip IP] [--json]',
    positionals: [2, 2],
    needs: 'METHOD and URL, as in: GET http://example.test/',
    options: [
      { ...CONFIG, help: `${CONFIG.help} (required)` },
      { name: 'header', short: 'H', type: 'string', multiple: true, arg: '"NAME: VALUE"', help: 'a request header; repeat for more' },
      { name: 'client-ip', type: 'string', arg: 'IP', help: 'the client address the route sees (default 127.0.0.1)' },
      { name: 'json', type: 'boolean', help: 'print the explanation as JSON' },
      HELP_OPTION,
    ],
    examples: ["usher explain -c usher.yaml GET http://api.example.test/v1/users -H 'cookie: ab=b'"],
  },
  {
    name: 'plan',
    summary: "what a config file would change in a running usher (its admin API's POST /config/plan)",
    usage: 'usher plan --config FILE [--admin ADDRESS] [--token TOKEN] [--json]',
    positionals: [0, 0],
    options: [
      { ...CONFIG, help: 'the candidate config, YAML or JSON (required)' },
      ...ADMIN_CLIENT_OPTIONS,
      HELP_OPTION,
    ],
    notes: ['Exit status 0 when the plan was made, 1 when the config is invalid (file:line:col errors, as validate), 3 when the admin API cannot be reached or refuses the token.'],
    examples: ['usher plan -c usher.yaml', 'usher plan -c next.yaml --admin 10.0.0.5:9901 --token "$TOKEN"'],
  },
  {
    name: 'apply',
    summary: 'apply a config file to a running usher, atomically (the same path as a reload)',
    usage: 'usher apply --config FILE [--admin ADDRESS] [--token TOKEN] [--json]',
    positionals: [0, 0],
    options: [
      { ...CONFIG, help: 'the config to apply, YAML or JSON (required)' },
      ...ADMIN_CLIENT_OPTIONS,
      HELP_OPTION,
    ],
    notes: [
      'A config with errors, or one that cannot be applied (a listener that cannot bind), changes nothing: usher keeps serving the previous one. The running usher reloads its own file on SIGHUP or when the file is saved: apply the file it serves from to keep the two in step.',
      'Exit status 0 when applied, 1 when refused, 3 when the admin API cannot be reached or refuses the token.',
    ],
    examples: ['usher apply -c usher.yaml'],
  },
  {
    name: 'purge',
    summary: "remove stored responses from a running usher's caches (its admin API's POST /cache/purge)",
    usage: 'usher purge (--url URL | --prefix PREFIX | --tag TAG) [--store NAME] [--config FILE] [--admin ADDRESS] [--token TOKEN] [--json]',
    positionals: [0, 0],
    options: [
      { name: 'url', type: 'string', arg: 'URL', help: 'an absolute URL: every stored variant of its key' },
      { name: 'prefix', type: 'string', arg: 'PREFIX', help: 'every key that starts with PREFIX (keys are scheme://host[:port]/path?query)' },
      { name: 'tag', type: 'string', arg: 'TAG', help: 'every response the upstream tagged TAG (Cache-Tag, Surrogate-Key: a route\'s tag_fields)' },
      { name: 'store', type: 'string', arg: 'NAME', help: 'only this store (default: every store)' },
      { ...CONFIG, help: 'the config whose admin section says where the admin API is (optional)' },
      ...ADMIN_CLIENT_OPTIONS,
      HELP_OPTION,
    ],
    notes: ['Exit status 0 when the purge was made (whatever it removed), 1 when refused (a bad URL, no such store), 3 when the admin API cannot be reached or refuses the token.'],
    examples: ['usher purge --url https://example.com/index.html', 'usher purge --tag product-42 --admin 10.0.0.5:9901 --token "$TOKEN"'],
  },
  {
    name: 'completion',
    summary: 'print a shell completion script for bash or zsh',
    usage: 'usher completion bash|zsh',
    positionals: [1, 1],
    needs: 'the shell: bash or zsh',
    options: [HELP_OPTION],
    notes: ['bash: add `source <(usher completion bash)` to ~/.bashrc\nzsh:  add `source <(usher completion zsh)` to ~/.zshrc (after compinit)'],
    examples: ['usher completion bash > /etc/bash_completion.d/usher', 'source <(usher completion zsh)'],
  },
  {
    name: 'help',
    summary: 'this overview, or `usher help COMMAND` for one command',
    usage: 'usher help [COMMAND]',
    positionals: [0, 1],
    options: [HELP_OPTION],
    examples: ['usher help serve'],
  },
];

export const commandNamed = (name: string): CommandSpec | undefined => COMMANDS.find((c) => c.name === name);

const flag = (o: OptionSpec) => `${o.short !== undefined ? `-${o.short}, ` : '    '}--${o.name}${o.arg !== undefined ? ` ${o.arg}` : ''}`;

function table(rows: [string, string][]): string {
  const width = Math.max(...rows.map(([l]) => l.length)) + 3;
  return rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`).join('\n');
}

export const EXIT_CODES =
  'Exit codes:\n  0   success (validate: the config is valid)\n  1   the config is invalid (validate, plan, apply, or serve at start-up)\n  2   usage error (unknown command or option)\n  3   usher could not start (e.g. the address is in use); plan, apply: the admin API cannot be reached\n  70  internal error';

export function overview(): string {
  return [
    'usher — a reverse proxy and load balancer',
    `Usage:\n${table([...COMMANDS.map((c): [string, string] => [`usher ${c.name}`, c.summary]), ['usher --version', 'the version'], ['usher --help', 'this text']])}`,
    'Run `usher COMMAND --help` for a command\'s options and examples.',
    `Common options:\n${table([[flag(CONFIG), CONFIG.help]])}`,
    commandNamed('serve')!.notes![0]!,
    EXIT_CODES,
  ].join('\n\n') + '\n';
}

export function commandHelp(c: CommandSpec): string {
  return [
    `usher ${c.name} — ${c.summary}`,
    `Usage:\n  ${c.usage}`,
    `Options:\n${table(c.options.map((o): [string, string] => [flag(o), o.help]))}`,
    ...(c.notes ?? []),
    `Example${c.examples.length > 1 ? 's' : ''}:\n${c.examples.map((e) => `  ${e}`).join('\n')}`,
  ].join('\n\n') + '\n';
}

/** A usage error, in usher's words: what is wrong, a did-you-mean when there is one, where help is. */
export class UsageError extends Error {
  constructor(
    readonly command: string | undefined,
    message: string,
  ) {
    super(message);
  }

  text(): string {
    const who = this.command === undefined ? 'usher' : `usher ${this.command}`;
    return `${who}: ${this.message}\nRun \`${who} --help\` for ${this.command === undefined ? 'the commands' : 'its options and an example'}.\n`;
  }
}

export type Values = Record<string, string | boolean | string[] | undefined>;

/**
 * Parses a command's arguments. Node's parseArgs runs without `strict` (its messages would reach
 * the user) and usher checks the tokens itself: unknown options get a did-you-mean among this
 * command's options, a missing value or a value given to a flag is named.
 */
export function parseCommand(c: CommandSpec, argv: readonly string[]): { values: Values; positionals: string[] } {
  const options = Object.fromEntries(c.options.map((o) => [o.name, { type: o.type, ...(o.short !== undefined ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) }]));
  const { values, positionals, tokens } = parseArgs({ args: [...argv], options, allowPositionals: true, strict: false, tokens: true });
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    const spec = c.options.find((o) => o.name === t.name);
    if (spec === undefined) {
      const names = c.options.flatMap((o) => [`--${o.name}`, ...(o.short !== undefined ? [`-${o.short}`] : [])]);
      // One letter is too little to guess from: only long options get a did-you-mean.
      const meant = t.rawName.startsWith('--') ? closest(t.rawName, names.filter((n) => n.startsWith('--'))) : undefined;
      throw new UsageError(c.name, `unknown option ${t.rawName}${meant !== undefined ? ` (did you mean ${meant}?)` : ''}`);
    }
    if (spec.type === 'string' && (t.value === undefined || (!t.inlineValue && t.value.startsWith('-') && t.value !== '-'))) {
      throw new UsageError(c.name, `${t.rawName} needs a value: ${t.rawName} ${spec.arg ?? 'VALUE'}`);
    }
    if (spec.type === 'boolean' && t.inlineValue) throw new UsageError(c.name, `${t.rawName} takes no value`);
    if (spec.type === 'string' && !spec.multiple && seen.has(spec.name)) throw new UsageError(c.name, `${t.rawName} is given more than once`);
    seen.add(spec.name);
  }
  if (values.help === true) return { values, positionals };
  const [min, max] = c.positionals;
  if (positionals.length > max) throw new UsageError(c.name, `unexpected argument ${JSON.stringify(positionals[max])}`);
  if (positionals.length < min) throw new UsageError(c.name, `expected ${c.needs ?? `${min} argument${min === 1 ? '' : 's'}`}`);
  return { values, positionals };
}

/** The command named by argv[0], or a usage error with a did-you-mean. */
export function findCommand(name: string): CommandSpec {
  const c = commandNamed(name);
  if (c !== undefined) return c;
  const meant = closest(name, COMMANDS.map((x) => x.name));
  throw new UsageError(undefined, `unknown command ${JSON.stringify(name)}${meant !== undefined ? ` (did you mean "${meant}"?)` : ''}`);
}
