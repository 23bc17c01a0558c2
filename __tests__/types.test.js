'use strict'
// The package's two faces, CommonJS and ESM, and their typings: what index.d.ts and
// index.d.mts declare is exactly what require() and import give, and TypeScript consumers
// of either kind (`--module nodenext`) compile against the package as installed.
const test = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { mkdirSync, readFileSync, symlinkSync } = require('node:fs')
const { join } = require('node:path')
const { pathToFileURL } = require('node:url')
// TypeScript comes with the dev dependencies (through @napi-rs/cli).
const ts = require('typescript')
const { root, tempDir, writeIn } = require('./helpers.js')

const TSC = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
const OPTIONS = {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  noEmit: true,
  types: [],
}

/** The value exports a declaration file declares, and the members of its Engine class. */
function declared(file) {
  const program = ts.createProgram([file], OPTIONS)
  const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
  assert.deepEqual(problems, [], `${file} type-checks`)
  const checker = program.getTypeChecker()
  const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)))
  const resolve = (s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s)
  const values = exported.filter((s) => resolve(s).flags & ts.SymbolFlags.Value).map((s) => s.name)
  const engine = resolve(exported.find((s) => s.name === 'Engine'))
  const methods = checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(engine)).map((p) => p.name)
  const union = (name) => {
    const alias = resolve(exported.find((s) => s.name === name))
    return checker
      .getDeclaredTypeOfSymbol(alias)
      .types.map((t) => t.value)
      .sort()
  }
  return { values: values.sort(), methods: methods.sort(), reasons: union('Reason'), verdicts: union('Verdict') }
}

const runtimeMethods = (Engine) =>
  Object.getOwnPropertyNames(Engine.prototype)
    .filter((m) => m !== 'constructor')
    .sort()

test('index.d.ts declares exactly what require() exports, Engine methods included', () => {
  const api = require('..')
  const types = declared(join(root, 'index.d.ts'))
  assert.deepEqual(types.values, Object.keys(api).sort())
  for (const name of types.values) assert.equal(typeof api[name], 'function', name)
  assert.deepEqual(types.methods, runtimeMethods(api.Engine))
})

test('index.d.mts declares exactly what import exports, the default export included', async () => {
  const esm = await import(pathToFileURL(join(root, 'index.mjs')).href)
  const types = declared(join(root, 'index.d.mts'))
  assert.deepEqual(types.values, Object.keys(esm).sort())
  assert.deepEqual(types.methods, runtimeMethods(esm.Engine))
  // One API, not two copies of it: the default export is the CommonJS module itself.
  assert.equal(esm.default, require('..'))
  for (const name of Object.keys(esm)) if (name !== 'default') assert.equal(esm[name], esm.default[name], name)
})

test("Decision's decision and reason unions are exactly what the engine returns", () => {
  const rust = readFileSync(join(root, 'src', 'engine', 'decision.rs'), 'utf8')
  const strings = (type) => [...rust.matchAll(new RegExp(`${type}::\\w+ => "(\\w+)"`, 'g'))].map((m) => m[1])
  const types = declared(join(root, 'index.d.ts'))
  // audit_unavailable comes from the proxy's audit log, never from the engine the API runs.
  assert.deepEqual(types.reasons, strings('Reason').filter((r) => r !== 'audit_unavailable').sort())
  assert.deepEqual(types.verdicts, strings('Verdict').sort())
  assert.ok(types.reasons.includes('default_allow') && types.reasons.includes('budget'))
})

/** An empty project with the package installed (linked), as a consumer has it. */
function consumerProject() {
  const dir = tempDir()
  writeIn(dir, 'package.json', JSON.stringify({ name: 'consumer', private: true }))
  mkdirSync(join(dir, 'node_modules', '@policylayer'), { recursive: true })
  symlinkSync(root, join(dir, 'node_modules', '@policylayer', 'intercept'), 'junction')
  return dir
}

function tsc(dir, files) {
  return spawnSync(process.execPath, [TSC, '--module', 'nodenext', '--moduleResolution', 'nodenext', '--strict', '--noEmit', ...files], {
    cwd: dir,
    encoding: 'utf8',
  })
}

const ESM_CONSUMER = `
import intercept, { Engine, evaluate, validate, run, shutdown } from '@policylayer/intercept'
import type { Decision, Reason, InterceptError, ErrorCode } from '@policylayer/intercept'

const engine = new Engine({ policy: 'tools: {}', stateFailMode: 'open' })
const decision: Decision = engine.evaluate({ tool: 'read_file', args: { path: 'a' } })
const reason: Reason = decision.reason
const page = engine.filterTools({ tools: [{ name: 'a', description: 'A' }], nextCursor: 'next' })
const cursor: string | undefined = page.nextCursor
const names: string[] = engine.filterTools([{ name: 'a' }]).map((t) => t.name)
const same: typeof Engine = intercept.Engine
const valid: boolean = validate('tools: {}').valid
const once: Promise<Decision> = engine.evaluateAsync({ tool: 'x' })
evaluate('tools: {}', { tool: 'x' })
run(['--version']).then((code: number) => code)
shutdown()
try {
  engine.reload('tools: []')
} catch (e) {
  const error = e as InterceptError
  const code: ErrorCode = error.code
  error.errors?.forEach((x) => x.line + x.column)
  void code
}
// @ts-expect-error: not an option
new Engine({ polcy: 'tools: {}' })
// @ts-expect-error: not a reason
const wrong: Reason = 'rule_matched'
export { reason, cursor, names, same, valid, once, wrong }
`

const CJS_CONSUMER = `
import { Engine, evaluate, validate, run, shutdown, type Decision } from '@policylayer/intercept'
import intercept = require('@policylayer/intercept')

const engine = new Engine({ policyFile: 'policy.yaml', identity: 'bot' })
const decision: Decision = engine.evaluate({ tool: 'x', identity: null })
const same: typeof Engine = intercept.Engine
validate('policy.yaml')
evaluate('tools: {}', { tool: 'x' })
run([]).then((code: number) => code)
shutdown(15)
export = { decision, same }
`

test('TypeScript consumers compile against the package, as .mts and as .cts', () => {
  const dir = consumerProject()
  writeIn(dir, 'consumer.mts', ESM_CONSUMER)
  writeIn(dir, 'consumer.cts', CJS_CONSUMER)
  const r = tsc(dir, ['consumer.mts', 'consumer.cts'])
  assert.equal(r.stdout + r.stderr, '')
  assert.equal(r.status, 0)

  // The check can fail: a name the package does not export, a wrong argument.
  writeIn(dir, 'broken.mts', "import { Engine, Policy } from '@policylayer/intercept'\nnew Engine({ policy: 5 })\nexport type { Policy }\n")
  const broken = tsc(dir, ['broken.mts'])
  assert.notEqual(broken.status, 0)
  assert.match(broken.stdout, /has no exported member 'Policy'/)
  assert.match(broken.stdout, /Type 'number' is not assignable to type 'string'/)
})

test('import and require of the installed package give the same working API', () => {
  const dir = consumerProject()
  writeIn(
    dir,
    'esm.mjs',
    `import intercept, { Engine, evaluate, validate, run, shutdown } from '@policylayer/intercept'
import { createRequire } from 'node:module'
const required = createRequire(import.meta.url)('@policylayer/intercept')
const engine = new Engine({ policy: 'tools:\\n  rm:\\n    rules:\\n      - {name: never, action: deny}\\n' })
console.log(JSON.stringify({
  functions: [Engine, evaluate, validate, run, shutdown].map((f) => typeof f),
  same: required === intercept && required.Engine === Engine,
  denied: engine.evaluate({ tool: 'rm' }).rule,
  oneShot: evaluate('tools: {}', { tool: 'x' }).reason,
  valid: validate('{}').valid,
  version: required.evaluate === evaluate && createRequire(import.meta.url)('@policylayer/intercept/package.json').name,
}))
`,
  )
  const r = spawnSync(process.execPath, ['esm.mjs'], { cwd: dir, encoding: 'utf8' })
  assert.equal(r.stderr, '')
  assert.deepEqual(JSON.parse(r.stdout), {
    functions: ['function', 'function', 'function', 'function', 'function'],
    same: true,
    denied: 'never',
    oneShot: 'default_allow',
    valid: true,
    version: '@policylayer/intercept',
  })
})
