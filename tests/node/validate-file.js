#!/usr/bin/env node
// validate-file.js SCHEMA FILE - validates one JSON file against one of schemas/*.schema.json
// (ajv, draft 2020-12). Exit 0 if it validates; 1 with the errors on stderr if not; 2 on misuse.
'use strict';

const fs = require('fs');
const path = require('path');

if (process.argv.length !== 4) {
  console.error('usage: validate-file.js SCHEMA.json FILE.json');
  process.exit(2);
}
const Ajv2020 = require(path.join(__dirname, 'node_modules', 'ajv', 'dist', '2020'));
const addFormats = require(path.join(__dirname, 'node_modules', 'ajv-formats'));
const ajv = new Ajv2020({strict: true, allErrors: true});
addFormats(ajv);
const schemaPath = process.argv[2];
const dir = path.dirname(schemaPath);
// Schemas may refer to each other by $id: load the whole folder first.
for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.schema.json'))) {
  const s = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
  if (path.resolve(dir, f) !== path.resolve(schemaPath) && s.$id) {
    ajv.addSchema(s);
  }
}
const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaPath, 'utf8')));
let doc;
try {
  doc = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
} catch (e) {
  console.error(process.argv[3] + ': not JSON: ' + e.message);
  process.exit(1);
}
if (!validate(doc)) {
  for (const e of validate.errors) {
    console.error(process.argv[3] + ': ' + (e.instancePath || '(root)') + ': ' + e.message);
  }
  process.exit(1);
}
