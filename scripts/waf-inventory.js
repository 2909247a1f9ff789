// Prints what a SecLang rule set uses (directives, variables, operators, transformations,
// actions, ctl options) with counts: the list docs/waf.md documents for the CRS.
//   npm run build && node scripts/waf-inventory.js [/usr/share/modsecurity-crs/rules/*.conf]
import { loadRuleFiles } from '../dist/src/waf/load.js';
import { inventory } from '../dist/src/waf/inventory.js';

const path = process.argv[2] ?? '/usr/share/modsecurity-crs/rules/*.conf';
const inv = inventory(loadRuleFiles(path));
for (const [kind, map] of Object.entries(inv)) {
  console.log(`${kind}:`);
  for (const [name, n] of [...map].sort((a, b) => a[0].localeCompare(b[0]))) console.log(`  ${name} ${n}`);
}
