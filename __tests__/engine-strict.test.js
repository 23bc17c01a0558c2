'use strict'
// The Node API refuses what it cannot use, and says what and why: unknown options and fields
// (with a did-you-mean), wrong types, missing arguments, invalid policies (with every error),
// missing files, bad state settings. Each error has a `code` (docs/node.md lists them).
const test = require('node:test')
const assert = require('node:assert/strict')
const { mkdirSync } = require('node:fs')
const { join } = require('node:path')
const { Engine, validate, evaluate, run, shutdown } = require('..')
const { tempDir, writeIn } = require('./helpers.js')
const { startRedis } = require('./redis.js')

const POLICY = 'tools:\n  t:\n    rules:\n      - {name: hourly, rate_limit: 5/hour}\n'

/** Asserts `fn` throws a TypeError with code INTERCEPT_INVALID_ARGUMENT and this message. */
function invalid(fn, message) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof TypeError, `a TypeError: ${e}`)
    assert.equal(e.code, 'INTERCEPT_INVALID_ARGUMENT')
    if (message instanceof RegExp) assert.match(e.message, message)
    else assert.equal(e.message, message)
    return true
  })
}

test('a missing argument says what was expected', () => {
  invalid(
    () => new Engine(),
    "new Engine(options) needs an options object, such as { policy: yamlText } or { policyFile: 'policy.yaml' }; got undefined",
  )
  invalid(() => new Engine(null), /needs an options object.*; got null$/)
  invalid(() => new Engine('tools: {}'), /needs an options object.*; got string$/)
  const engine = new Engine({ policy: POLICY })
  invalid(
    () => engine.evaluate(),
    "engine.evaluate(call) needs a tool call object, such as { tool: 'read_file', args: { path: 'a.txt' } }; got undefined",
  )
  invalid(() => engine.evaluate('t'), /^engine\.evaluate\(call\) needs a tool call object.*; got string$/)
  invalid(() => evaluate(POLICY), /^evaluate\(policyPathOrYaml, call\) needs a tool call object.*; got undefined$/)
  invalid(() => evaluate(undefined, { tool: 't' }), 'evaluate(policyPathOrYaml, call) needs the policy as a string (YAML text or a file path), got undefined')
  invalid(() => validate(), 'validate(textOrPath) needs the policy as a string (YAML text or a file path), got undefined')
  invalid(() => validate({ tools: {} }), /^validate\(textOrPath\) needs the policy as a string .*, got object$/)
  invalid(() => engine.reload(), 'engine.reload(policyOrPath) needs the policy as a string (YAML text or a file path), got undefined')
  invalid(() => engine.commit(), 'engine.commit(decision) needs the decision returned by evaluate, got undefined')
  invalid(() => engine.rollback(null), 'engine.rollback(decision) needs the decision returned by evaluate, got null')
  invalid(() => engine.commit({ reservation: '1' }), 'decision.reservation must be the number evaluate returned, got string')
  invalid(() => engine.commit({ reservation: null }), 'decision.reservation must be the number evaluate returned, got null')
  invalid(() => shutdown('SIGTERM'), 'shutdown(signal) needs a signal number (an integer) or nothing, got string')
  invalid(() => shutdown(1.5), 'shutdown(signal) needs a signal number (an integer) or nothing, got 1.5')
  invalid(() => shutdown(NaN), 'shutdown(signal) needs a signal number (an integer) or nothing, got NaN')
})

test('unknown options and call fields are errors, with a did-you-mean', () => {
  invalid(() => new Engine({ polcy: POLICY }), 'Unknown option "polcy" in new Engine(options); did you mean "policy"?')
  invalid(() => new Engine({ policy: POLICY, identiy: 'bot' }), 'Unknown option "identiy" in new Engine(options); did you mean "identity"?')
  invalid(() => new Engine({ policy_file: 'p.yaml' }), 'Unknown option "policy_file" in new Engine(options); did you mean "policyFile"?')
  invalid(() => new Engine({ policy: POLICY, statePrefx: 'x' }), /did you mean "statePrefix"\?$/)
  invalid(() => new Engine({ path: 'p.yaml' }), /did you mean "policyFile"\?$/)
  invalid(
    () => new Engine({ policy: POLICY, colour: 'red' }),
    'Unknown option "colour" in new Engine(options); expected one of policy, policyFile, state, statePrefix, stateFailMode, identity, session.',
  )
  // Even when the misspelt option is set to undefined: it was meant to say something.
  invalid(() => new Engine({ policy: POLICY, sesion: undefined }), /did you mean "session"\?$/)

  const engine = new Engine({ policy: POLICY })
  invalid(() => engine.evaluate({ tool: 't', identiy: 'bot' }), 'Unknown field "identiy" in engine.evaluate(call); did you mean "identity"?')
  invalid(() => engine.evaluate({ tool: 't', client_name: 'x' }), /did you mean "clientName"\?$/)
  // The shape of MCP's `tools/call` params is not the shape of a call.
  invalid(() => engine.evaluate({ name: 't', arguments: {} }), 'Unknown field "name" in engine.evaluate(call); did you mean "tool"?')
  invalid(() => engine.evaluate({ tool: 't', arguments: {} }), /"arguments" .*did you mean "args"\?$/)
  invalid(() => evaluate(POLICY, { tool: 't', sesion: 's' }), 'Unknown field "sesion" in evaluate(policyPathOrYaml, call); did you mean "session"?')
  invalid(() => engine.evaluate({ tool: 't', xyz: 1 }), /expected one of tool, args, identity, session, clientName\.$/)
})

test('the async methods reject bad arguments rather than throw', async () => {
  const engine = new Engine({ policy: POLICY })
  const pending = engine.evaluateAsync({ tool: 't', identiy: 'bot' })
  assert.ok(pending instanceof Promise)
  await assert.rejects(pending, { code: 'INTERCEPT_INVALID_ARGUMENT', message: 'Unknown field "identiy" in engine.evaluateAsync(call); did you mean "identity"?' })
  await assert.rejects(engine.commitAsync(), { code: 'INTERCEPT_INVALID_ARGUMENT', message: /^engine\.commitAsync\(decision\) needs the decision/ })
  await assert.rejects(engine.rollbackAsync(7), { code: 'INTERCEPT_INVALID_ARGUMENT', message: /got number$/ })
  await assert.rejects(run('validate'), { code: 'INTERCEPT_INVALID_ARGUMENT', message: /^run\(argv\) needs an array of strings/ })
  await assert.rejects(run(['--version', 3]), { code: 'INTERCEPT_INVALID_ARGUMENT' })
  assert.equal((await engine.evaluateAsync({ tool: 't' })).decision, 'allow')
})

test('wrong types name the field and the expected type', () => {
  invalid(() => new Engine({ policy: 5 }), 'options.policy must be a string (YAML text), got number')
  invalid(() => new Engine({ policyFile: ['p.yaml'] }), 'options.policyFile must be a string (a file path), got array')
  invalid(() => new Engine({ policy: POLICY, state: 1 }), 'options.state must be a string ("memory", "sqlite:PATH" or a Redis DSN), got number')
  invalid(() => new Engine({ policy: POLICY, statePrefix: {} }), 'options.statePrefix must be a string, got object')
  invalid(() => new Engine({ policy: POLICY, stateFailMode: 'sometimes' }), 'options.stateFailMode must be "closed" or "open", got "sometimes"')
  invalid(() => new Engine({ policy: POLICY, stateFailMode: true }), 'options.stateFailMode must be "closed" or "open", got boolean')
  invalid(() => new Engine({ policy: POLICY, identity: 7 }), 'options.identity must be a string, got number')
  invalid(() => new Engine({ policy: POLICY, session: false }), 'options.session must be a string, got boolean')
  invalid(() => new Engine({ policy: POLICY, policyFile: 'p.yaml' }), /exactly one of options\.policy \(YAML text\) and options\.policyFile \(a path\), got both$/)

  const engine = new Engine({ policy: POLICY })
  invalid(() => engine.evaluate({}), 'call.tool must be a non-empty string (the tool name), got undefined')
  invalid(() => engine.evaluate({ tool: 5 }), 'call.tool must be a non-empty string (the tool name), got number')
  invalid(() => engine.evaluate({ tool: '' }), 'call.tool must be a non-empty string (the tool name), got an empty string')
  invalid(() => engine.evaluate({ tool: 't', identity: 1 }), 'call.identity must be a string, got number')
  invalid(() => engine.evaluate({ tool: 't', session: [] }), 'call.session must be a string, got array')
  invalid(() => engine.evaluate({ tool: 't', clientName: {} }), 'call.clientName must be a string, got object')
  invalid(() => engine.filterTools([], 3), 'engine.filterTools(tools, identity): identity must be a string, got number')

  // null and undefined mean "not given".
  const lenient = new Engine({ policy: POLICY, policyFile: null, identity: undefined, state: null, stateFailMode: null })
  assert.equal(lenient.evaluate({ tool: 't', args: null, identity: null, session: undefined, clientName: null }).decision, 'allow')
})

test('filterTools takes the tools array or a whole tools/list result', () => {
  const engine = new Engine({ policy: 'hide: [secret]\ngrants:\n  bot: {tools: [read]}\n  admin: {tools: "*"}\n', identity: 'bot' })
  const read = { name: 'read', inputSchema: { type: 'object' } }
  const tools = [read, { name: 'secret' }, { name: 'write' }, { title: 'no name' }, null, 'read']
  const filtered = engine.filterTools(tools)
  assert.deepEqual(filtered, [read])
  assert.equal(filtered[0], read, 'the same objects, not copies')

  const page = { tools, nextCursor: 'page-2', _meta: { x: 1 } }
  const result = engine.filterTools(page)
  assert.deepEqual(result, { tools: [read], nextCursor: 'page-2', _meta: { x: 1 } })
  assert.notEqual(result, page, 'a new result')
  assert.equal(page.tools.length, 6, 'the given result is left as it was')
  assert.deepEqual(
    engine.filterTools(page, 'admin').tools.map((t) => t.name),
    ['read', 'write'],
  )

  for (const [bad, got] of [[undefined, 'undefined'], [null, 'null'], ['read', 'string'], [{}, 'an object without a tools array'], [{ tools: 'read' }, 'an object without a tools array']]) {
    invalid(() => engine.filterTools(bad), `engine.filterTools(tools) needs an array of tools or a tools/list result ({ tools: [...] }), got ${got}`)
  }
})

test('an invalid policy throws INTERCEPT_INVALID_POLICY with every error, from the constructor, reload and one-shot evaluate', () => {
  const text = 'version: "2"\nhidden: []\n'
  const expected = [
    { message: 'version must be "1", got "2"', line: 1, column: 10, path: '' },
    { message: 'unknown field "hidden" (did you mean "hide"?)', line: 2, column: 1, path: '' },
  ]
  const check = (e) => {
    assert.ok(e instanceof Error)
    assert.equal(e.code, 'INTERCEPT_INVALID_POLICY')
    assert.deepEqual(e.errors, expected)
    assert.match(e.message, /^policy validation failed with 2 error\(s\):\n {2}<policy>:1:10: version must be "1", got "2"\n {2}<policy>:2:1: unknown field "hidden"/)
    return true
  }
  assert.throws(() => new Engine({ policy: text }), check)
  const engine = new Engine({ policy: POLICY })
  assert.throws(() => engine.reload(text), check)
  assert.throws(() => evaluate(text, { tool: 't' }), check)
  assert.deepEqual(validate(text), { valid: false, errors: expected })

  const dir = tempDir()
  const file = writeIn(dir, 'bad.yaml', text)
  assert.throws(
    () => new Engine({ policyFile: file }),
    (e) => e.code === 'INTERCEPT_INVALID_POLICY' && e.errors.length === 2 && e.message.includes(`${file}:1:10:`),
  )
  // File names given as text: the policy option holds YAML.
  assert.throws(() => new Engine({ policy: 'policy.yaml' }), {
    code: 'INTERCEPT_INVALID_POLICY',
    message: /the policy must be a mapping, got a string\noptions\.policy holds the policy as YAML text, and "policy\.yaml" reads like a file name: to load a file, pass options\.policyFile instead\.$/,
  })
})

test('a text-or-path argument that looks like a path is read as one, and a missing one says so', () => {
  const dir = tempDir()
  const cwd = process.cwd()
  for (const path of ['policy', './p.yaml', 'policies/x.yml', `${dir}/nope`, 'C:\\policies\\p']) {
    assert.throws(() => validate(path), (e) => {
      assert.equal(e.code, 'INTERCEPT_POLICY_NOT_FOUND', path)
      assert.ok(e.message.startsWith(`Policy file "${path}" not found`), e.message)
      assert.match(e.message, /validate\(textOrPath\) reads a single line without YAML mapping syntax as a file path/)
      return true
    })
  }
  assert.throws(() => validate('policy'), {
    message: `Policy file "policy" not found; looked for ${join(cwd, 'policy')}. validate(textOrPath) reads a single line without YAML mapping syntax as a file path: pass the path of an existing file, or the policy as YAML text such as "tools: {}".`,
  })
  const engine = new Engine({ policy: POLICY })
  assert.throws(() => engine.reload('policy.yml'), { code: 'INTERCEPT_POLICY_NOT_FOUND', message: /engine\.reload\(policyOrPath\) reads a single line/ })
  assert.throws(() => evaluate('policy', { tool: 't' }), { code: 'INTERCEPT_POLICY_NOT_FOUND', message: /evaluate\(policyPathOrYaml, call\) reads a single line/ })

  // One-line policies are still policies.
  for (const text of ['tools: {}', '{}', '{tools: {}}', 'default: deny', 'tools:']) {
    assert.deepEqual(validate(text), { valid: true, errors: [] }, JSON.stringify(text))
  }
  // An empty document is text too, and refused as a policy (not looked for as a file).
  for (const text of ['', '# nothing yet', 'null', '~', '---']) {
    assert.equal(validate(text).errors[0]?.line, 1, JSON.stringify(text))
  }
  // YAML that is not a mapping is a YAML error, not a missing file.
  assert.equal(validate('[read_file]').errors[0].message, 'the policy must be a mapping, got a list')
  assert.equal(validate('- read_file').errors[0].message, 'the policy must be a mapping, got a list')

  // An existing file, whatever its name, is read.
  const file = writeIn(dir, 'policy', 'default: maybe\n')
  assert.equal(validate(file).errors[0].message, 'default must be "allow" or "deny", got "maybe"')
  engine.reload(writeIn(dir, 'deny-t', 'tools:\n  t:\n    rules:\n      - {name: no, action: deny}\n'))
  assert.equal(engine.evaluate({ tool: 't' }).rule, 'no')

  // A directory is not a policy file.
  mkdirSync(join(dir, 'policies'))
  assert.throws(() => validate(join(dir, 'policies')), { code: 'INTERCEPT_POLICY_UNREADABLE', message: /^Cannot read policy file ".*policies" \(validate\(textOrPath\)\): / })
  assert.throws(() => new Engine({ policyFile: dir }), { code: 'INTERCEPT_POLICY_UNREADABLE', message: /\(options\.policyFile\)/ })
})

test('state settings that are malformed or unusable have their own codes', () => {
  assert.throws(() => new Engine({ policy: POLICY, state: 'mongodb://x' }), {
    code: 'INTERCEPT_INVALID_STATE',
    message: /invalid state setting "mongodb:\/\/x"/,
  })
  assert.throws(() => new Engine({ policy: POLICY, state: 'redis://127.0.0.1:1/0', statePrefix: 'a{b}' }), { code: 'INTERCEPT_INVALID_STATE' })
  const dir = tempDir()
  const notADir = writeIn(dir, 'file', '')
  assert.throws(() => new Engine({ policy: POLICY, state: `sqlite:${notADir}/state.sqlite` }), {
    code: 'INTERCEPT_STATE_UNAVAILABLE',
    message: /cannot open state database/,
  })
})

test('a store that fails while settling rejects with INTERCEPT_STATE_UNAVAILABLE', async () => {
  const redis = await startRedis()
  try {
    const engine = new Engine({ policy: POLICY, state: redis.url })
    const a = await engine.evaluateAsync({ tool: 't' })
    const b = await engine.evaluateAsync({ tool: 't' })
    assert.equal(typeof a.reservation, 'number')
    await redis.stop()
    await assert.rejects(engine.rollbackAsync(a), (e) => {
      assert.equal(e.code, 'INTERCEPT_STATE_UNAVAILABLE')
      assert.match(e.message, /Redis state store .* (is unavailable|did not answer)/)
      return true
    })
    assert.throws(() => engine.rollback(b), { code: 'INTERCEPT_STATE_UNAVAILABLE' })
  } finally {
    await redis.stop()
  }
})

test('allowed calls say which rule allowed them, or that none did', () => {
  const engine = new Engine({
    policy: `
tools:
  create_issue:
    rules:
      - {name: hourly issues, rate_limit: 3/hour}
  transfer:
    rules:
      - {name: big, action: require_approval, conditions: [{path: args.amount, op: gt, value: 1000}]}
`,
  })
  assert.deepEqual(engine.evaluate({ tool: 'create_issue' }), {
    decision: 'allow',
    reason: 'rule',
    tool: 'create_issue',
    rule: 'hourly issues',
    reservation: 1,
  })
  assert.deepEqual(engine.evaluate({ tool: 'read_file' }), { decision: 'allow', reason: 'default_allow', tool: 'read_file' })
  assert.equal(engine.evaluate({ tool: 'transfer', args: { amount: 5 } }).reason, 'default_allow')
  const listed = evaluate('default: deny\ntools:\n  read_file: {}\n', { tool: 'read_file' })
  assert.deepEqual(listed, { decision: 'allow', reason: 'listed', tool: 'read_file' })
})

test('a spent budget says so, with its limit and window; on_deny still replaces the message', () => {
  const engine = new Engine({
    policy: `
tools:
  pay:
    rules:
      - name: daily spend
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions: [{path: state.pay.spent, op: lte, value: 100000}]
  refund:
    rules:
      - name: refund cap
        scope: identity
        state: {counter: refunded, window: hour, increment_from: args.amount}
        conditions: [{path: state.refund.refunded, op: lte, value: 50}]
        on_deny: Refund cap reached; ask a human
`,
  })
  assert.equal(engine.evaluate({ tool: 'pay', args: { amount: 99999 } }).decision, 'allow')
  const over = engine.evaluate({ tool: 'pay', args: { amount: 2 } })
  assert.equal(over.decision, 'deny')
  assert.equal(over.reason, 'budget')
  assert.equal(over.rule, 'daily spend')
  assert.equal(over.message, 'Budget of 100000 per day on "spent" would be exceeded by this call (rule "daily spend")')
  assert.ok(over.retryAfterSeconds >= 1 && over.retryAfterSeconds <= 86400, String(over.retryAfterSeconds))
  assert.equal(engine.evaluate({ tool: 'pay', args: { amount: 1 } }).decision, 'allow', 'exactly the limit fits')

  const refund = engine.evaluate({ tool: 'refund', args: { amount: 51 }, identity: 'bot' })
  assert.deepEqual([refund.decision, refund.reason, refund.message], ['deny', 'budget', 'Refund cap reached; ask a human'])
})

const EMPTY =
  'the policy is empty, and an empty policy would allow every call: write its rules, or write `tools: {}` to allow every call on purpose'

test('an empty policy is refused everywhere: it would allow every call', () => {
  const dir = tempDir()
  const error = { message: EMPTY, line: 1, column: 1, path: '' }
  const refused = (origin) => (e) => {
    assert.equal(e.code, 'INTERCEPT_INVALID_POLICY')
    assert.deepEqual(e.errors, [error])
    assert.equal(e.message, `policy validation failed with 1 error(s):\n  ${origin}:1:1: ${EMPTY}`)
    return true
  }
  for (const text of ['', ' \n\t\n', '# nothing yet\n', 'null', '~', '---', '---\n...\n']) {
    const name = JSON.stringify(text)
    assert.deepEqual(validate(text), { valid: false, errors: [error] }, name)
    assert.throws(() => new Engine({ policy: text }), refused('<policy>'), name)
    assert.throws(() => evaluate(text, { tool: 't' }), refused('<policy>'), name)
    const file = writeIn(dir, 'empty.yaml', text)
    assert.deepEqual(validate(file), { valid: false, errors: [error] }, name)
    assert.throws(() => new Engine({ policyFile: file }), refused(file), name)
    assert.throws(() => evaluate(file, { tool: 't' }), refused(file), name)

    // A reload to it keeps the policy in force.
    const engine = new Engine({ policy: 'default: deny\n' })
    assert.throws(() => engine.reload(file), refused(file), name)
    assert.throws(() => engine.reload(text), refused('<policy>'), name)
    assert.equal(engine.evaluate({ tool: 't' }).decision, 'deny', name)
  }
  // Allowing everything on purpose is written out.
  assert.equal(evaluate('tools: {}', { tool: 't' }).decision, 'allow')
})

test('call.args that JSON cannot represent is an argument error: thrown, or rejected by evaluateAsync', async () => {
  const engine = new Engine({ policy: POLICY })
  const cycle = { a: [1] }
  cycle.a.push({ back: cycle })
  let deep = {}
  for (let i = 0; i < 200; i++) deep = { d: deep }
  const cases = [
    [{ n: 1n }, 'call.args.n is a BigInt'],
    [{ list: [1, () => 2] }, 'call.args.list[1] is a function'],
    [{ 'a key': Symbol('s') }, 'call.args["a key"] is a symbol'],
    [{ x: { y: [1, undefined] } }, 'call.args.x.y[1] is undefined'],
    [{ n: NaN }, 'call.args.n is NaN'],
    [{ n: -Infinity }, 'call.args.n is -Infinity'],
    [cycle, 'call.args.a[1].back refers back to call.args'],
    [deep, 'call.args is nested more than 128 levels deep'],
  ]
  for (const [args, why] of cases) {
    const message = `call.args must be JSON-representable (${why})`
    invalid(() => engine.evaluate({ tool: 't', args }), message)
    invalid(() => evaluate(POLICY, { tool: 't', args }), message)
    let promise
    assert.doesNotThrow(() => {
      promise = engine.evaluateAsync({ tool: 't', args })
    }, why)
    await assert.rejects(promise, (e) => {
      assert.ok(e instanceof TypeError, `a TypeError: ${e}`)
      assert.equal(e.code, 'INTERCEPT_INVALID_ARGUMENT')
      assert.equal(e.message, message)
      return true
    })
  }
  // Nothing was counted for the refused calls, and a property left undefined is simply absent.
  assert.equal(engine.evaluate({ tool: 't', args: { a: undefined } }).decision, 'allow')
  assert.equal((await engine.evaluateAsync({ tool: 't', args: { when: new Date(0) } })).decision, 'allow')
})
