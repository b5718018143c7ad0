#!/usr/bin/env node
// validate-schemas.js - checks schemas/*.schema.json with a real JSON Schema validator (ajv, draft
// 2020-12) and prints TAP:
//   - every schema compiles (ajv strict mode, formats from ajv-formats);
//   - for each schema X, every schemas/examples/X/good/*.json validates and every
//     schemas/examples/X/bad/*.json does not (a bad example that is not even JSON counts as bad);
//   - every protocol message type has a good example;
//   - every sweep file (sweeps/**/*.json outside the testbed's data and model folders,
//     tests/data/sweeps/*.json and tests/data/sweeps-results/*.json) validates against
//     sweep.schema.json, when that schema exists;
//   - every line of sweeps/testbed/data/tasks/*.jsonl validates against task.schema.json;
//   - the runner's error kinds agree between error.schema.json, result.schema.json and the
//     protocol's FAIL.kind.
// Usage: node tests/node/validate-schemas.js [REPO_ROOT]   (default: CS_SOURCE_DIR or ../..)
// Needs `npm ci` in tests/node (tests/run.sh does it).
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.resolve(process.argv[2] || process.env.CS_SOURCE_DIR || path.join(__dirname, '..', '..'));

let Ajv2020, addFormats;
try {
  Ajv2020 = require('ajv/dist/2020');
  addFormats = require('ajv-formats');
} catch (e) {
  console.log('Bail out! ajv is not installed (' + e.message.split('\n')[0] +
              '): run `cd tests/node && npm ci`');
  process.exit(1);
}

const results = []; // [ok, name, diagnostics]
function check(ok, name, diag) {
  results.push([!!ok, name, diag]);
}

function listJson(dir, ext) {
  if (!fs.existsSync(dir)) {
    return [];
  }
  return fs.readdirSync(dir).filter((f) => f.endsWith(ext || '.json')).sort()
      .map((f) => path.join(dir, f));
}

// Files under dir whose name ends with .json, recursively; skip(relPath) prunes folders and files.
function walkJson(dir, skip, out) {
  if (!fs.existsSync(dir)) {
    return out;
  }
  for (const e of fs.readdirSync(dir, {withFileTypes: true}).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = path.join(dir, e.name);
    if (skip(path.relative(root, p), e.isDirectory())) {
      continue;
    }
    if (e.isDirectory()) {
      walkJson(p, skip, out);
    } else if (e.name.endsWith('.json')) {
      out.push(p);
    }
  }
  return out;
}

function rel(p) {
  return path.relative(root, p);
}

function errorsText(errors) {
  return (errors || []).slice(0, 5).map((e) => `${e.instancePath || '(root)'}: ${e.message}`).join('; ');
}

// Strict mode, except strictRequired: `anyOf: [{required: [a]}, {required: [b]}]` is an idiom here.
const ajv = new Ajv2020({strict: true, strictRequired: false, allErrors: true, allowUnionTypes: true});
addFormats(ajv);

// 1. Every schema compiles.
const schemaDir = path.join(root, 'schemas');
const validators = {};
const schemas = {};
for (const file of listJson(schemaDir, '.schema.json')) {
  const name = path.basename(file, '.schema.json');
  try {
    schemas[name] = JSON.parse(fs.readFileSync(file, 'utf8'));
    validators[name] = ajv.compile(schemas[name]);
    check(true, `${rel(file)} compiles under draft 2020-12`);
  } catch (e) {
    check(false, `${rel(file)} compiles under draft 2020-12`, e.message);
  }
}
for (const must of ['protocol', 'result', 'task', 'error']) {
  check(must in validators, `schemas/${must}.schema.json exists and compiles`);
}

// The checks of "items" beyond the schema: problems as strings.
function itemsProblems(doc) {
  const out = [];
  const items = (doc && typeof doc.items === 'object' && doc.items) || {};
  for (const [task, it] of Object.entries(items)) {
    if (!doc.metrics || !(task in doc.metrics)) {
      out.push(`items.${task}: no task of this name in metrics`);
    }
    for (const [key, v] of Object.entries(it || {})) {
      if (key === 'n' || key === 'sample' || typeof v !== 'string' || !Number.isInteger(it.n)) {
        continue;
      }
      const bytes = Buffer.from(v, 'base64');
      const isFloat = key === 'margin' || key === 'window_loss';
      const want = isFloat ? 4 * it.n : Math.ceil(it.n / 8);
      if (bytes.toString('base64') !== v) {
        out.push(`items.${task}.${key}: not canonical base64`);
      } else if (bytes.length !== want) {
        out.push(`items.${task}.${key}: ${bytes.length} bytes for n = ${it.n}, want ${want}`);
      } else if (isFloat) {
        for (let i = 0; i < it.n; i++) {
          if (!Number.isFinite(bytes.readFloatLE(4 * i))) {
            out.push(`items.${task}.${key}: value ${i} is not finite`);
          }
        }
      } else if (it.n % 8 !== 0 && (bytes[want - 1] >> (it.n % 8)) !== 0) {
        out.push(`items.${task}.${key}: bits past item ${it.n - 1} are set`);
      }
    }
  }
  return out;
}

// 2. Examples.
function validateFile(validate, file) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    return {parsed: false, valid: false, errors: 'not JSON: ' + e.message};
  }
  let valid = validate(doc);
  let errors = valid ? '' : errorsText(validate.errors);
  if (valid && validate === validators.result && itemsProblems(doc).length > 0) {
    valid = false;
    errors = itemsProblems(doc).join('; ');
  }
  return {parsed: true, valid, errors, doc};
}

const examplesDir = path.join(schemaDir, 'examples');
const protocolTypes = new Set();
for (const name of Object.keys(validators).sort()) {
  const good = listJson(path.join(examplesDir, name, 'good'));
  const bad = listJson(path.join(examplesDir, name, 'bad'));
  if (['protocol', 'result', 'task', 'error'].includes(name)) {
    check(good.length >= 1 && bad.length >= 3,
          `schemas/examples/${name}: at least 1 good and 3 bad examples (${good.length} good, ${bad.length} bad)`);
  }
  for (const f of good) {
    const r = validateFile(validators[name], f);
    check(r.valid, `${rel(f)} validates against ${name}.schema.json`, r.errors);
    if (name === 'protocol' && r.valid) {
      protocolTypes.add(r.doc.type);
    }
  }
  for (const f of bad) {
    const r = validateFile(validators[name], f);
    check(!r.valid, `${rel(f)} is refused by ${name}.schema.json`, r.valid ? 'it validates' : '');
  }
}
if (schemas.protocol) {
  for (const t of schemas.protocol.properties.type.enum) {
    check(protocolTypes.has(t), `protocol type ${t} has a good example`);
  }
}

// 3. Sweep files. The testbed's data, models, reference outputs and training folders hold JSON
// that is not a sweep; sweep files directly in sweeps/testbed/ are checked.
if (validators.sweep) {
  const notSweep = (r, isDir) => isDir && /^sweeps\/testbed\/./.test(r);
  const sweepFiles = walkJson(path.join(root, 'sweeps'), notSweep, [])
      .concat(listJson(path.join(root, 'tests', 'data', 'sweeps')))
      .concat(listJson(path.join(root, 'tests', 'data', 'sweeps-results')));
  for (const f of sweepFiles) {
    const r = validateFile(validators.sweep, f);
    check(r.valid, `${rel(f)} validates against sweep.schema.json`, r.errors);
  }
}

// 4. Task files of the testbed, one test per file.
if (validators.task) {
  for (const f of listJson(path.join(root, 'sweeps', 'testbed', 'data', 'tasks'), '.jsonl')) {
    const lines = fs.readFileSync(f, 'utf8').split('\n').filter((l) => l.length > 0);
    const problems = [];
    lines.forEach((line, i) => {
      let doc;
      try {
        doc = JSON.parse(line);
      } catch (e) {
        problems.push(`line ${i + 1}: not JSON`);
        return;
      }
      if (!validators.task(doc)) {
        problems.push(`line ${i + 1}: ${errorsText(validators.task.errors)}`);
      }
    });
    check(lines.length > 0 && problems.length === 0,
          `${rel(f)}: all ${lines.length} items validate against task.schema.json`,
          problems.slice(0, 3).join('\n'));
  }
}

// 5. One list of runner error kinds.
if (schemas.error && schemas.result && schemas.protocol) {
  const a = JSON.stringify(schemas.error.$defs.kind.enum);
  const b = JSON.stringify(schemas.result.$defs.error_kind.enum);
  const c = JSON.stringify(schemas.protocol.$defs.FAIL.properties.kind.enum.slice(0, 4));
  check(a === b && b === c, 'error kinds agree: error.schema.json, result.schema.json, FAIL.kind',
        `${a} / ${b} / ${c}`);
}

console.log(`1..${results.length}`);
results.forEach(([ok, name, diag], i) => {
  console.log(`${ok ? 'ok' : 'not ok'} ${i + 1} - ${name}`);
  if (!ok && diag) {
    for (const line of String(diag).split('\n')) {
      console.log(`# ${line}`);
    }
  }
});
process.exit(results.every((r) => r[0]) ? 0 : 1);
