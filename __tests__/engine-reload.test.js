'use strict'
// The in-process API's reload and shadow mode, through the built native addon.
const test = require('node:test')
const assert = require('node:assert/strict')
const { Engine } = require('..')

const V1 = `
tools:
  create_issue:
    rules:
      - name: hourly issues
        rate_limit: 2/hour
`

test('reload puts a new policy in force and keeps the counters', () => {
  const engine = new Engine({ policy: V1 })
  assert.equal(engine.evaluate({ tool: 'create_issue' }).decision, 'allow')
  assert.equal(engine.evaluate({ tool: 'delete_issue' }).decision, 'allow')
  engine.reload(`${V1}  delete_issue:
    rules:
      - name: no deletes
        action: deny
`)
  assert.equal(engine.evaluate({ tool: 'delete_issue' }).rule, 'no deletes')
  assert.equal(engine.evaluate({ tool: 'create_issue' }).decision, 'allow')
  const third = engine.evaluate({ tool: 'create_issue' })
  assert.equal(third.decision, 'deny', 'the first call still counts after the reload')
  assert.equal(third.reason, 'rate_limit')
})

test('an invalid reload throws with every error and keeps the policy in force', () => {
  const engine = new Engine({ policy: V1 })
  assert.throws(
    () => engine.reload('tools:\n  t:\n    rules:\n      - action: deni\n      - action: deny\n        mode: shadwo\n'),
    (e) => /4:17: .*action must be/.test(e.message) && /6:15: .*did you mean "shadow"/.test(e.message),
  )
  assert.equal(engine.evaluate({ tool: 't' }).decision, 'allow')
  engine.evaluate({ tool: 'create_issue' })
  engine.evaluate({ tool: 'create_issue' })
  assert.equal(engine.evaluate({ tool: 'create_issue' }).decision, 'deny', 'still V1')
})

test('a shadow rule reports shadow_deny and the call may go ahead', () => {
  const engine = new Engine({
    policy: 'tools:\n  drop:\n    rules:\n      - name: no drops\n        action: deny\n        mode: shadow\n',
  })
  const d = engine.evaluate({ tool: 'drop' })
  assert.deepEqual([d.decision, d.rule, d.reason], ['shadow_deny', 'no drops', 'rule'])
})
