// What a rule set uses: every directive, variable (collection), operator, transformation,
// action and ctl: option, with how often. docs/waf.md lists the CRS's, and its unit test
// checks that list against the installed CRS (scripts/waf-inventory.js prints it).
import type { Directive } from './parse.js';
import { parseActions, parseOperator, parseTargets } from './syntax.js';

export interface Inventory {
  readonly directives: Map<string, number>;
  readonly variables: Map<string, number>;
  readonly operators: Map<string, number>;
  readonly transformations: Map<string, number>;
  readonly actions: Map<string, number>;
  readonly ctl: Map<string, number>;
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

export function inventory(directives: readonly Directive[]): Inventory {
  const inv: Inventory = {
    directives: new Map(),
    variables: new Map(),
    operators: new Map(),
    transformations: new Map(),
    actions: new Map(),
    ctl: new Map(),
  };
  for (const d of directives) {
    bump(inv.directives, d.name);
    let actions: string | undefined;
    if (d.lname === 'secrule') {
      for (const t of parseTargets(d.args[0] ?? '')) bump(inv.variables, t.collection);
      bump(inv.operators, parseOperator(d.args[1] ?? '').name);
      actions = d.args[2];
    } else if (d.lname === 'secaction' || d.lname === 'secdefaultaction') {
      actions = d.args[0];
    } else if (d.lname === 'secruleupdatetargetbyid' || d.lname === 'secruleupdatetargetbytag') {
      for (const t of parseTargets(d.args[1] ?? '')) bump(inv.variables, t.collection);
    }
    if (actions === undefined) continue;
    for (const a of parseActions(actions)) {
      bump(inv.actions, a.name);
      if (a.name === 't' && a.value !== undefined) bump(inv.transformations, a.value);
      if (a.name === 'ctl' && a.value !== undefined) bump(inv.ctl, a.value.split('=')[0] ?? '');
    }
  }
  return inv;
}
