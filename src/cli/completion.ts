// `usher completion bash|zsh`: completion scripts made from the command table (commands.ts), so
// a new option is completed as soon as it is documented.
import { COMMANDS, type CommandSpec, type OptionSpec } from './commands.js';

const METHODS = 'GET HEAD POST PUT DELETE PATCH OPTIONS';
const names = COMMANDS.map((c) => c.name).join(' ');
const words = (c: CommandSpec) => c.options.flatMap((o) => [`--${o.name}`, ...(o.short !== undefined ? [`-${o.short}`] : [])]).join(' ');
const flags = (o: OptionSpec) => [`--${o.name}`, ...(o.short !== undefined ? [`-${o.short}`] : [])].join('|');

export function bashCompletion(): string {
  const cases = COMMANDS.map((c) => {
    const valued = c.options.filter((o) => o.type === 'string');
    const prev = valued.map((o) => `        ${flags(o)}) ${o.file ? 'COMPREPLY=($(compgen -f -- "$cur"))' : 'COMPREPLY=()'}; return ;;`);
    const positional =
      c.name === 'completion'
        ? 'COMPREPLY=($(compgen -W "bash zsh" -- "$cur"))'
        : c.name === 'help'
          ? `COMPREPLY=($(compgen -W "${names}" -- "$cur"))`
          : c.name === 'explain'
            ? `COMPREPLY=($(compgen -W "${METHODS}" -- "$cur"))`
            : 'COMPREPLY=()';
    return [
      `    ${c.name})`,
      ...(prev.length > 0 ? ['      case "$prev" in', ...prev, '      esac'] : []),
      `      if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "${words(c)}" -- "$cur")); else ${positional}; fi`,
      '      ;;',
    ].join('\n');
  });
  return `# bash completion for usher: add \`source <(usher completion bash)\` to ~/.bashrc
_usher() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=($(compgen -W "${names} --help --version" -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases.join('\n')}
  esac
}
complete -F _usher usher
`;
}

/** Text inside a zsh single-quoted _arguments spec: no quote, brackets or colons. */
const zq = (s: string) => s.replace(/'/g, '').replace(/[[\]]/g, '').replace(/:/g, ' -');

export function zshCompletion(): string {
  const describe = COMMANDS.map((c) => `    '${c.name}:${zq(c.summary)}'`).join('\n');
  const cases = COMMANDS.map((c) => {
    const specs = c.options.map((o) => {
      // A repeatable option has no exclusion list ("*" lets it come again).
      const prefix = o.multiple ? "'*'" : o.short !== undefined ? `'(-${o.short} --${o.name})'` : '';
      const name = o.short !== undefined ? `{-${o.short},--${o.name}}'` : `'--${o.name}`;
      const value = o.type === 'string' ? `:${zq(o.arg ?? 'value')}:${o.file ? '_files' : ''}` : '';
      return `${prefix}${name}[${zq(o.help)}]${value}'`;
    });
    if (c.name === 'explain') specs.push(`':method:(${METHODS})'`, "':url:'");
    if (c.name === 'completion') specs.push("':shell:(bash zsh)'");
    if (c.name === 'help') specs.push(`':command:(${names})'`);
    return `    ${c.name}) _arguments ${specs.join(' ')} ;;`;
  });
  return `#compdef usher
# zsh completion for usher: add \`source <(usher completion zsh)\` to ~/.zshrc, after compinit
_usher() {
  local -a commands
  commands=(
${describe}
  )
  if (( CURRENT == 2 )); then
    _describe -t commands 'usher command' commands
    return
  fi
  local cmd=$words[2]
  shift words
  (( CURRENT-- ))
  case $cmd in
${cases.join('\n')}
  esac
}
compdef _usher usher
`;
}
