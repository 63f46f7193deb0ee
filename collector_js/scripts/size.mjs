// Prints the minified bundle's size raw and gzip -9, and fails above the 6 KB budget.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

const BUDGET = 6 * 1024;
const path = new URL('../dist/bioshard-collector.min.js', import.meta.url);
const raw = readFileSync(path);
const gz = gzipSync(raw, { level: 9 }).length;
console.log(`dist/bioshard-collector.min.js: ${raw.length} B minified, ${gz} B gzip -9 (budget ${BUDGET})`);
if (gz > BUDGET) {
  console.error('over the size budget');
  process.exit(1);
}
