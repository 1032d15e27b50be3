// Removes the "resolved" download addresses from web/package-lock.json (the project
// records no registry addresses in its files; `npm ci` resolves names through the
// configured registry and checks each package against its "integrity" hash).
// Run after `npm install`: node web/scripts/strip-resolved.mjs
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'package-lock.json');
const lock = JSON.parse(readFileSync(file, 'utf8'));
let removed = 0;
for (const entry of Object.values(lock.packages ?? {})) {
  if (entry && typeof entry === 'object' && 'resolved' in entry) {
    delete entry.resolved;
    removed += 1;
  }
}
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.error(`package-lock.json: removed ${removed} "resolved" fields`);
