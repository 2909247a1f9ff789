// `usher <command> --help`, usage errors in usher's words with a did-you-mean, and the shell
// completions, all through the real CLI.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli, tempDir, writeFile } from '../helpers/cli.js';

const LIMIT = { timeout: 120_000 };

/** What each command's help must show: its options (long and short) and an example line. */
const EXPECTED: Record<string, string[]> = {
  serve: ['usher serve [--config FILE]', '-c, --config FILE', '--listen ADDRESS', '-h, --help', 'SIGHUP', 'usher serve --config usher.yaml'],
  validate: ['usher validate --config FILE', '-c, --config FILE', 'usher validate --config usher.yaml'],
  explain: ['METHOD URL', '-c, --config FILE', '-H, --header', '--client-ip IP', '--json', 'usher explain -c usher.yaml GET http://'],
  plan: ['usher plan --config FILE', '-c, --config FILE', '--admin ADDRESS', '--token TOKEN', '--json', 'usher plan -c usher.yaml'],
  apply: ['usher apply --config FILE', '-c, --config FILE', '--admin ADDRESS', 'keeps serving the previous one', 'usher apply -c usher.yaml'],
  completion: ['usher completion bash|zsh', 'source <(usher completion bash)'],
  help: ['usher help [COMMAND]', 'usher help serve'],
};

/** Node's own parseArgs wording, which must never reach the user. */
const NODE_WORDS = /ERR_PARSE_ARGS|Unknown option '|argument is ambiguous|To specify an option argument starting with/;

test('usher COMMAND --help, -h and usher help COMMAND: options and an example, exit 0', LIMIT, async (t) => {
  for (const [command, wanted] of Object.entries(EXPECTED)) {
    const long = await runCli([command, '--help']);
    assert.equal(long.code, 0, `${command} --help: ${long.stderr}`);
    for (const w of wanted) assert.ok(long.stdout.includes(w), `usher ${command} --help shows ${JSON.stringify(w)}:\n${long.stdout}`);
    assert.match(long.stdout, /^Examples?:\n {2}usher /m, `usher ${command} --help has an example`);
    const short = await runCli([command, '-h']);
    assert.equal(short.stdout, long.stdout);
    const viaHelp = await runCli(['help', command]);
    assert.equal(viaHelp.code, 0);
    assert.equal(viaHelp.stdout, long.stdout);
  }
  // Options before the command, as the CLI always took them.
  const dir = tempDir(t);
  const file = writeFile(join(dir, 'u.yaml'), 'listeners: [{ address: 127.0.0.1:0 }]\nroutes: [{ respond: {} }]\n');
  const before = await runCli(['-c', file, 'validate']);
  assert.equal(before.code, 0, before.stderr);
  assert.equal(before.stdout, `${file}: valid (1 route, 0 upstreams)\n`);
  // --help wins over what is missing: no "--config FILE is required" for `validate --help`.
  assert.equal((await runCli(['explain', '--help'])).stderr, '');
});

test('usage errors: usher\'s own words, a did-you-mean, where to get help, exit 2', LIMIT, async () => {
  const cases: [string[], RegExp][] = [
    [['servee'], /^usher: unknown command "servee" \(did you mean "serve"\?\)\nRun `usher --help` for the commands\.\n$/],
    [['valdiate', '-c', 'x.yaml'], /unknown command "valdiate" \(did you mean "validate"\?\)/],
    [['frobnicate'], /^usher: unknown command "frobnicate"\n/],
    [['serve', '--confg', 'x.yaml'], /^usher serve: unknown option --confg \(did you mean --config\?\)\nRun `usher serve --help` for its options and an example\.\n$/],
    [['explain', '--jsn', '-c', 'x.yaml', 'GET', 'http://a.test/'], /^usher explain: unknown option --jsn \(did you mean --json\?\)/],
    [['serve', '--bogus'], /^usher serve: unknown option --bogus\n/],
    [['validate', '-x'], /^usher validate: unknown option -x\n/],
    [['validate', '--config'], /^usher validate: --config needs a value: --config FILE\n/],
    [['validate', '--config', '--help2'], /^usher validate: --config needs a value: --config FILE\n/],
    [['explain', '-c', 'x.yaml', '--json=yes', 'GET', 'http://a.test/'], /^usher explain: --json takes no value\n/],
    [['validate', '-c', 'a.yaml', '-c', 'b.yaml'], /^usher validate: -c is given more than once\n/],
    [['validate', '-c', 'a.yaml', 'extra'], /^usher validate: unexpected argument "extra"\n/],
    [['explain', '-c', 'a.yaml', 'GET'], /^usher explain: expected METHOD and URL, as in: GET http:\/\/example\.test\/\n/],
    [['completion'], /^usher completion: expected the shell: bash or zsh\n/],
    [['completion', 'bsh'], /^usher completion: no completion for "bsh": bash or zsh \(did you mean "bash"\?\)\n/],
    [['help', 'srve'], /^usher: unknown command "srve" \(did you mean "serve"\?\)/],
    [['--verison'], /^usher: unknown option --verison \(did you mean --version\?\); a command comes first/],
  ];
  for (const [args, re] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: exit 2\n${r.stderr}`);
    assert.match(r.stderr, re, args.join(' '));
    assert.doesNotMatch(r.stderr, NODE_WORDS, args.join(' '));
    assert.equal(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
  }
});

/** Runs the bash completion function for a command line (the word being completed last). */
function bashComplete(script: string, dir: string, line: string[]): Promise<string[]> {
  const words = line.map((w) => `'${w}'`).join(' ');
  const program = `${script}\ncd '${dir}'\nCOMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _usher; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return new Promise((resolve, reject) => {
    execFile('bash', ['--noprofile', '--norc', '-c', program], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stderr}`));
      else resolve(stdout.split('\n').filter((l) => l !== '').sort());
    });
  });
}

test('completion bash: commands, each command\'s options, files after --config, the shells', LIMIT, async (t) => {
  const r = await runCli(['completion', 'bash']);
  assert.equal(r.code, 0, r.stderr);
  const dir = tempDir(t);
  writeFile(join(dir, 'usher.yaml'), 'listeners: []\n');
  writeFile(join(dir, 'other.json'), '{}\n');
  assert.deepEqual(await bashComplete(r.stdout, dir, ['usher', 's']), ['serve']);
  assert.deepEqual(await bashComplete(r.stdout, dir, ['usher', '']), ['--help', '--version', 'apply', 'completion', 'explain', 'help', 'plan', 'purge', 'serve', 'validate']);
  assert.deepEqual(await bashComplete(r.stdout, dir, ['usher', 'serve', '--']), ['--config', '--help', '--listen', '--workers']);
  assert.deepEqual(await bashComplete(r.stdout, dir, ['usher', 'explain', '--c']), ['--client-ip', '--config']);
  assert.deepEqual(await bashComplete(r.stdout, dir, ['usher', 'validate', '--config', 'us']), ['usher.yaml']);
  assert.deepEqual(await bashComplete(r.stdout, dir, ['usher', 'serve', '-c', '']), ['other.json', 'usher.yaml']);
  assert.deepEqual(await bashComplete(r.stdout, dir, ['usher', 'completion', '']), ['bash', 'zsh']);
  assert.deepEqual(await bashComplete(r.stdout, dir, ['usher', 'explain', '-c', 'usher.yaml', 'P']), ['PATCH', 'POST', 'PUT']);
});

test('completion zsh: a #compdef script naming every command and option', LIMIT, async () => {
  const r = await runCli(['completion', 'zsh']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^#compdef usher\n/);
  assert.match(r.stdout, /\ncompdef _usher usher\n$/);
  for (const c of Object.keys(EXPECTED)) assert.match(r.stdout, new RegExp(`\\n {4}'${c}:[^']+'\\n`), `command ${c} with its summary`);
  for (const o of ['{-c,--config}', '--listen[', '*\'{-H,--header}', '--client-ip[', '--json[', ':shell:(bash zsh)']) assert.ok(r.stdout.includes(o), `zsh script has ${o}`);
  assert.match(r.stdout, /\{-c,--config\}'\[[^\]]+\]:FILE:_files'/, '--config completes files');
});
