'use strict'
// The in-process API through the built native addon.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine, validate, evaluate } = require('..')
const { tempDir, writeIn } = require('./helpers.js')

const GITHUB = `
version: 1
hide: [delete_repository]
tools:
  create_issue:
    rules:
      - name: hourly issues
        rate_limit: 3/hour
      - name: no prod
        conditions:
          - path: args.repo
            op: neq
            value: prod
        on_deny: "Issues in prod are not allowed"
  create_refund:
    rules:
      - name: daily spend
        state: {counter: spent, window: day, increment_from: args.amount}
        conditions: [{path: state.create_refund.spent, op: lte, value: 1000}]
`

test('evaluate allows, denies with the rule and message, and rate-limits with a retry time', () => {
  const engine = new Engine({ policy: GITHUB })
  const ok = engine.evaluate({ tool: 'create_issue', args: { repo: 'dev' } })
  assert.equal(ok.decision, 'allow')
  assert.equal(ok.reason, 'rule')
  assert.equal(ok.rule, 'hourly issues', 'the first rule that allowed it')
  assert.equal(ok.tool, 'create_issue')
  assert.equal(typeof ok.reservation, 'number')

  const prod = engine.evaluate({ tool: 'create_issue', args: { repo: 'prod' } })
  assert.deepEqual(
    { decision: prod.decision, rule: prod.rule, message: prod.message, reason: prod.reason },
    { decision: 'deny', rule: 'no prod', message: 'Issues in prod are not allowed', reason: 'rule' },
  )
  assert.equal(prod.reservation, undefined)

  engine.evaluate({ tool: 'create_issue', args: { repo: 'dev' } })
  engine.evaluate({ tool: 'create_issue', args: { repo: 'dev' } })
  const limited = engine.evaluate({ tool: 'create_issue', args: { repo: 'dev' } })
  assert.equal(limited.decision, 'deny')
  assert.equal(limited.reason, 'rate_limit')
  assert.equal(limited.rule, 'hourly issues')
  assert.equal(limited.message, 'Rate limit of 3 per hour reached. Try again later.')
  assert.ok(limited.retryAfterSeconds >= 1 && limited.retryAfterSeconds <= 3600, String(limited.retryAfterSeconds))

  const hidden = engine.evaluate({ tool: 'delete_repository', args: {} })
  assert.equal(hidden.decision, 'deny')
  assert.equal(hidden.rule, '(hidden)')
  assert.equal(hidden.message, 'Tool "delete_repository" is hidden by policy')
})

test('rollback gives quota back; commit keeps it; each settles once', () => {
  const engine = new Engine({ policy: GITHUB })
  const a = engine.evaluate({ tool: 'create_refund', args: { amount: 600 } })
  assert.equal(a.decision, 'allow')
  const b = engine.evaluate({ tool: 'create_refund', args: { amount: 600 } })
  assert.equal(b.decision, 'deny')
  assert.equal(engine.rollback(a), true)
  assert.equal(engine.rollback(a), false, 'a reservation is settled once')
  const c = engine.evaluate({ tool: 'create_refund', args: { amount: 600 } })
  assert.equal(c.decision, 'allow')
  assert.equal(engine.commit(c), true)
  assert.equal(engine.commit(c), false)
  assert.equal(engine.rollback(c), false, 'a committed reservation cannot be rolled back')
  assert.equal(engine.evaluate({ tool: 'create_refund', args: { amount: 401 } }).decision, 'deny')
  assert.equal(engine.evaluate({ tool: 'create_refund', args: { amount: 400 } }).decision, 'allow')
  assert.equal(engine.commit({ decision: 'deny', reason: 'rule', tool: 'x' }), false)
})

test('arguments that are not a JSON object are denied', () => {
  const engine = new Engine({ policy: 'tools: {}' })
  for (const args of ['rm -rf /', [1, 2], 5, true]) {
    const d = engine.evaluate({ tool: 'anything', args })
    assert.equal(d.decision, 'deny', JSON.stringify(args))
    assert.equal(d.reason, 'invalid_arguments')
    assert.match(d.message, /^Tool arguments must be a JSON object/)
  }
  assert.equal(engine.evaluate({ tool: 'anything' }).decision, 'allow')
  assert.equal(engine.evaluate({ tool: 'anything', args: null }).decision, 'allow')
})

test('increment_from refuses negative and non-numeric amounts', () => {
  const engine = new Engine({ policy: GITHUB })
  const neg = engine.evaluate({ tool: 'create_refund', args: { amount: -5000 } })
  assert.equal(neg.decision, 'deny')
  assert.equal(neg.reason, 'invalid_arguments')
  assert.equal(neg.message, 'increment_from "args.amount" must be a finite, non-negative number, got -5000')
  assert.equal(engine.evaluate({ tool: 'create_refund', args: { amount: '10' } }).reason, 'invalid_arguments')
})

test('identities and sessions come from the call or the engine defaults', () => {
  const policy = `
grants:
  alice: {tools: '*'}
  bot: {tools: [read_file]}
tools:
  read_file:
    rules:
      - {rate_limit: 1/hour, scope: session}
`
  const engine = new Engine({ policy, identity: 'bot', session: 's1' })
  assert.equal(engine.evaluate({ tool: 'read_file' }).decision, 'allow')
  assert.equal(engine.evaluate({ tool: 'read_file' }).decision, 'deny')
  assert.equal(engine.evaluate({ tool: 'read_file', session: 's2' }).decision, 'allow')
  const w = engine.evaluate({ tool: 'write_file' })
  assert.equal(w.reason, 'not_granted')
  assert.equal(w.message, 'Tool "write_file" is not granted to identity "bot"')
  assert.equal(engine.evaluate({ tool: 'write_file', identity: 'alice' }).decision, 'allow')
})

test('require_approval decisions carry the rule and the timeout', () => {
  const engine = new Engine({
    policy: `
tools:
  transfer:
    rules:
      - name: large
        action: require_approval
        approval_timeout: 30m
        conditions: [{path: args.amount, op: gt, value: 1000}]
`,
  })
  assert.equal(engine.evaluate({ tool: 'transfer', args: { amount: 5 } }).decision, 'allow')
  const d = engine.evaluate({ tool: 'transfer', args: { amount: 5000 } })
  assert.equal(d.decision, 'require_approval')
  assert.equal(d.rule, 'large')
  assert.equal(d.approvalTimeoutSeconds, 1800)
})

test('filterTools drops hidden, ungranted and unlisted tools and keeps every field', () => {
  const engine = new Engine({
    policy: `
default: deny
hide: [secret]
tools:
  read_file: {}
  secret: {}
  'list_*': {}
`,
  })
  const tools = [
    { name: 'read_file', description: 'Read', inputSchema: { type: 'object' }, _meta: { x: 1 } },
    { name: 'secret' },
    { name: 'write_file' },
    { name: 'list_dir', annotations: { readOnlyHint: true } },
    { description: 'no name' },
  ]
  assert.deepEqual(engine.filterTools(tools), [tools[0], tools[3]])
  const kept = engine.filterTools(tools)
  assert.equal(kept[0], tools[0], 'the same objects, not copies')
})

test('a sqlite state is shared by engines, as by processes', () => {
  const dir = tempDir()
  const state = `sqlite:${dir}/state/intercept.sqlite`
  const policy = 'tools:\n  t:\n    rules:\n      - rate_limit: 2/day\n'
  const one = new Engine({ policy, state })
  const two = new Engine({ policy, state })
  assert.equal(one.evaluate({ tool: 't' }).decision, 'allow')
  assert.equal(two.evaluate({ tool: 't' }).decision, 'allow')
  assert.equal(one.evaluate({ tool: 't' }).decision, 'deny')
  assert.equal(two.evaluate({ tool: 't' }).decision, 'deny')
  assert.throws(() => new Engine({ policy, state: 'mongodb://x' }), /invalid state setting "mongodb:\/\/x"/)
})

test('new Engine throws with every validation error, line and column', () => {
  assert.throws(
    () => new Engine({ policy: 'version: "2"\nhidden: []\n' }),
    (err) => {
      assert.match(err.message, /policy validation failed with 2 error\(s\)/)
      assert.match(err.message, /<policy>:1:10: version must be "1", got "2"/)
      assert.match(err.message, /<policy>:2:1: unknown field "hidden" \(did you mean "hide"\?\)/)
      return true
    },
  )
  assert.throws(() => new Engine({}), /exactly one of options\.policy \(YAML text\) and options\.policyFile \(a path\), got neither/)
  assert.throws(() => new Engine({ policyFile: '/nonexistent/policy.yaml' }), {
    code: 'INTERCEPT_POLICY_NOT_FOUND',
    message: 'Policy file "/nonexistent/policy.yaml" (options.policyFile) not found.',
  })
  // A relative path: where it was looked for, in the same sentence.
  assert.throws(() => new Engine({ policyFile: 'nope.yaml' }), {
    code: 'INTERCEPT_POLICY_NOT_FOUND',
    message: `Policy file "nope.yaml" (options.policyFile) not found; looked for ${require('node:path').join(process.cwd(), 'nope.yaml')}.`,
  })
})

test('validate takes text or a path and returns every error', () => {
  const dir = tempDir()
  const bad = writeIn(dir, 'bad.yaml', 'tools:\n  t:\n    rules:\n      - action: deny\n        on-deny: x\n')
  for (const input of [bad, 'tools:\n  t:\n    rules:\n      - action: deny\n        on-deny: x\n']) {
    const r = validate(input)
    assert.equal(r.valid, false)
    assert.deepEqual(r.errors, [
      {
        message: 'tools.t.rules[0]: unknown field "on-deny" (did you mean "on_deny"?)',
        line: 5,
        column: 9,
        path: 'tools.t.rules[0]',
      },
    ])
  }
  assert.deepEqual(validate('tools: {}'), { valid: true, errors: [] })
  assert.throws(() => validate(`${dir}/missing.yaml`), { code: 'INTERCEPT_POLICY_NOT_FOUND', message: new RegExp(`^Policy file "${dir}/missing.yaml" not found\\.`) })
})

test('evaluate() is a one-shot convenience over a path or YAML', () => {
  const dir = tempDir()
  const path = writeIn(dir, 'p.yaml', 'tools:\n  rm:\n    rules:\n      - {name: never, action: deny}\n')
  const d = evaluate(path, { tool: 'rm', args: {} })
  assert.equal(d.decision, 'deny')
  assert.equal(d.rule, 'never')
  assert.equal(d.message, 'Denied by rule "never"')
  assert.equal(evaluate('default: deny\ntools:\n  ok: {}\n', { tool: 'ok' }).decision, 'allow')
  assert.throws(() => evaluate('tools: [x]', { tool: 'ok' }), /tools: value must be a mapping/)
})
