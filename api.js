'use strict'
// The JS API over the native addon: every argument and option is checked here, with messages
// that name the field and what it should be, before the addon converts it. The addon's own
// errors carry their `code` (and, for an invalid policy, `errors`) already. docs/node.md
// documents them all.

const INVALID_ARGUMENT = 'INTERCEPT_INVALID_ARGUMENT'

const ENGINE_OPTIONS = ['policy', 'policyFile', 'state', 'statePrefix', 'stateFailMode', 'identity', 'session']
const CALL_FIELDS = ['tool', 'args', 'identity', 'session', 'clientName']
// Names a caller may reach for that no spelling distance links to the right one.
const OPTION_ALIASES = {
  file: 'policyFile',
  path: 'policyFile',
  policyPath: 'policyFile',
  yaml: 'policy',
  text: 'policy',
  store: 'state',
  prefix: 'statePrefix',
  failMode: 'stateFailMode',
}
const CALL_ALIASES = { name: 'tool', toolName: 'tool', arguments: 'args', params: 'args', client: 'clientName' }

function invalidArgument(message) {
  const error = new TypeError(message)
  error.code = INVALID_ARGUMENT
  return error
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  return typeof value
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** Optimal string alignment distance: edits, counting a swap of neighbours as one. */
function distance(a, b) {
  const rows = [Array.from({ length: b.length + 1 }, (_, j) => j)]
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row[j] = Math.min(rows[i - 1][j] + 1, row[j - 1] + 1, rows[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j], rows[i - 2][j - 2] + 1)
    }
    rows.push(row)
  }
  return rows[a.length][b.length]
}

/** The known name a misspelt one most likely meant, if any (case, `_` and `-` ignored). */
function suggest(name, known, aliases) {
  if (Object.hasOwn(aliases, name)) return aliases[name]
  const normal = (s) => s.toLowerCase().replace(/[-_]/g, '')
  let best
  let bestDistance = Infinity
  for (const candidate of known) {
    const d = distance(normal(name), normal(candidate))
    if (d <= Math.max(1, Math.floor(candidate.length / 3)) && d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

function unknownKey(kind, key, where, known, aliases) {
  const guess = suggest(key, known, aliases)
  const hint = guess ? `did you mean "${guess}"?` : `expected one of ${known.join(', ')}.`
  return invalidArgument(`Unknown ${kind} "${key}" in ${where}; ${hint}`)
}

/** `undefined` and `null` mean "not given". */
function checkOptionalString(value, name, expected = 'a string') {
  if (value !== undefined && value !== null && typeof value !== 'string') {
    throw invalidArgument(`${name} must be ${expected}, got ${describe(value)}`)
  }
}

function checkString(value, where, name, expected) {
  if (typeof value !== 'string') {
    throw invalidArgument(`${where} needs ${name} as ${expected}, got ${describe(value)}`)
  }
}

function checkEngineOptions(options) {
  const where = 'new Engine(options)'
  if (!isObject(options)) {
    throw invalidArgument(
      `${where} needs an options object, such as { policy: yamlText } or { policyFile: 'policy.yaml' }; got ${describe(options)}`,
    )
  }
  for (const key in options) {
    if (!ENGINE_OPTIONS.includes(key)) throw unknownKey('option', key, where, ENGINE_OPTIONS, OPTION_ALIASES)
  }
  checkOptionalString(options.policy, 'options.policy', 'a string (YAML text)')
  checkOptionalString(options.policyFile, 'options.policyFile', 'a string (a file path)')
  const text = options.policy != null
  const file = options.policyFile != null
  if (text === file) {
    throw invalidArgument(
      `${where} needs exactly one of options.policy (YAML text) and options.policyFile (a path), got ${text ? 'both' : 'neither'}`,
    )
  }
  checkOptionalString(options.state, 'options.state', 'a string ("memory", "sqlite:PATH" or a Redis DSN)')
  checkOptionalString(options.statePrefix, 'options.statePrefix')
  const mode = options.stateFailMode
  if (mode !== undefined && mode !== null && mode !== 'closed' && mode !== 'open') {
    const got = typeof mode === 'string' ? JSON.stringify(mode) : describe(mode)
    throw invalidArgument(`options.stateFailMode must be "closed" or "open", got ${got}`)
  }
  checkOptionalString(options.identity, 'options.identity')
  checkOptionalString(options.session, 'options.session')
  // The addon reads absent options as undefined only.
  return {
    policy: options.policy ?? undefined,
    policyFile: options.policyFile ?? undefined,
    state: options.state ?? undefined,
    statePrefix: options.statePrefix ?? undefined,
    stateFailMode: options.stateFailMode ?? undefined,
    identity: options.identity ?? undefined,
    session: options.session ?? undefined,
  }
}

// On every evaluation: a handful of comparisons, no allocation unless something is wrong (or
// a field is null). Returns the call to hand to the addon.
function checkCall(call, where) {
  if (!isObject(call)) {
    throw invalidArgument(`${where} needs a tool call object, such as { tool: 'read_file', args: { path: 'a.txt' } }; got ${describe(call)}`)
  }
  for (const key in call) {
    if (key !== 'tool' && key !== 'args' && key !== 'identity' && key !== 'session' && key !== 'clientName') {
      throw unknownKey('field', key, where, CALL_FIELDS, CALL_ALIASES)
    }
  }
  const tool = call.tool
  if (typeof tool !== 'string' || tool === '') {
    throw invalidArgument(`call.tool must be a non-empty string (the tool name), got ${tool === '' ? 'an empty string' : describe(tool)}`)
  }
  const { identity, session, clientName } = call
  if (identity != null && typeof identity !== 'string') checkOptionalString(identity, 'call.identity')
  if (session != null && typeof session !== 'string') checkOptionalString(session, 'call.session')
  if (clientName != null && typeof clientName !== 'string') checkOptionalString(clientName, 'call.clientName')
  // The addon reads absent fields as undefined only.
  if (identity === null || session === null || clientName === null) {
    return { tool, args: call.args, identity: identity ?? undefined, session: session ?? undefined, clientName: clientName ?? undefined }
  }
  return call
}

function checkDecision(decision, where) {
  if (!isObject(decision)) {
    throw invalidArgument(`${where} needs the decision returned by evaluate, got ${describe(decision)}`)
  }
  const handle = decision.reservation
  if (handle !== undefined && typeof handle !== 'number') {
    throw invalidArgument(`decision.reservation must be the number evaluate returned, got ${describe(handle)}`)
  }
}

/** Runs a method that returns a promise: a bad argument, or anything else thrown, rejects it. */
function rejecting(run) {
  try {
    return run()
  } catch (error) {
    return Promise.reject(error)
  }
}

/** How a key reads in a path: `.name`, or `["a key"]`. */
function member(key) {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
}

// napi's limit when it converts `args` to JSON.
const MAX_ARGS_DEPTH = 128

/**
 * Why `value` (at `path`) has no JSON form, as the addon's conversion sees it, or undefined.
 * Runs only after the addon refused a call, so evaluations that succeed never pay for it.
 */
function notJson(value, path, depth, ancestors) {
  switch (typeof value) {
    case 'bigint':
      return `${path} is a BigInt`
    case 'function':
      return `${path} is a function`
    case 'symbol':
      return `${path} is a symbol`
    case 'undefined':
      return `${path} is undefined`
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} is ${value}`
    case 'object': {
      if (value === null) return undefined
      const back = ancestors.get(value)
      if (back !== undefined) return `${path} refers back to ${back}`
      if (depth >= MAX_ARGS_DEPTH) return `call.args is nested more than ${MAX_ARGS_DEPTH} levels deep`
      ancestors.set(value, path)
      let why
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length && why === undefined; i++) why = notJson(value[i], `${path}[${i}]`, depth + 1, ancestors)
      } else {
        for (const key in value) {
          // A property left undefined is simply absent.
          if (value[key] !== undefined) why = notJson(value[key], path + member(key), depth + 1, ancestors)
          if (why !== undefined) break
        }
      }
      ancestors.delete(value)
      return why
    }
    default:
      return undefined
  }
}

/**
 * The error for a call the addon refused. Every field but `args` was checked before, so a
 * conversion error (napi's code `InvalidArg`) is about `args`; the addon's own errors pass.
 */
function callError(error, call) {
  if (error === null || typeof error !== 'object' || error.code !== 'InvalidArg') return error
  const why =
    notJson(call.args, 'call.args', 0, new Map()) ??
    String(error.message).replace(/ on ToolCall\.args$/, '').replace(/serde_json::Value/g, 'JSON')
  return invalidArgument(`call.args must be JSON-representable (${why})`)
}

/** The API over a loaded addon. */
function bind(native) {
  /** A compiled policy with its counter store. */
  class Engine {
    #native

    constructor(options) {
      this.#native = new native.Engine(checkEngineOptions(options))
    }

    evaluate(call) {
      const checked = checkCall(call, 'engine.evaluate(call)')
      try {
        return this.#native.evaluate(checked)
      } catch (error) {
        throw callError(error, checked)
      }
    }

    evaluateAsync(call) {
      return rejecting(() => {
        const checked = checkCall(call, 'engine.evaluateAsync(call)')
        try {
          return this.#native.evaluateAsync(checked)
        } catch (error) {
          throw callError(error, checked)
        }
      })
    }

    commit(decision) {
      checkDecision(decision, 'engine.commit(decision)')
      return this.#native.commit(decision)
    }

    rollback(decision) {
      checkDecision(decision, 'engine.rollback(decision)')
      return this.#native.rollback(decision)
    }

    commitAsync(decision) {
      return rejecting(() => {
        checkDecision(decision, 'engine.commitAsync(decision)')
        return this.#native.commitAsync(decision)
      })
    }

    rollbackAsync(decision) {
      return rejecting(() => {
        checkDecision(decision, 'engine.rollbackAsync(decision)')
        return this.#native.rollbackAsync(decision)
      })
    }

    reload(policyOrPath) {
      checkString(policyOrPath, 'engine.reload(policyOrPath)', 'the policy', 'a string (YAML text or a file path)')
      this.#native.reload(policyOrPath)
    }

    filterTools(toolsOrResult, identity) {
      checkOptionalString(identity, 'engine.filterTools(tools, identity): identity')
      if (Array.isArray(toolsOrResult)) return this.#visible(toolsOrResult, identity)
      if (isObject(toolsOrResult) && Array.isArray(toolsOrResult.tools)) {
        return { ...toolsOrResult, tools: this.#visible(toolsOrResult.tools, identity) }
      }
      throw invalidArgument(
        `engine.filterTools(tools) needs an array of tools or a tools/list result ({ tools: [...] }), got ${isObject(toolsOrResult) ? 'an object without a tools array' : describe(toolsOrResult)}`,
      )
    }

    /** The tools `tools/list` may show; entries without a string `name` are dropped. */
    #visible(tools, identity) {
      const named = tools.filter((t) => isObject(t) && typeof t.name === 'string')
      const shown = this.#native.visibleTools(
        named.map((t) => t.name),
        identity ?? undefined,
      )
      return named.filter((_, i) => shown[i])
    }
  }

  function validate(textOrPath) {
    checkString(textOrPath, 'validate(textOrPath)', 'the policy', 'a string (YAML text or a file path)')
    return native.validate(textOrPath)
  }

  function evaluate(policyPathOrYaml, call) {
    checkString(policyPathOrYaml, 'evaluate(policyPathOrYaml, call)', 'the policy', 'a string (YAML text or a file path)')
    const checked = checkCall(call, 'evaluate(policyPathOrYaml, call)')
    try {
      return native.evaluate(policyPathOrYaml, checked)
    } catch (error) {
      throw callError(error, checked)
    }
  }

  function run(argv) {
    return rejecting(() => {
      if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) {
        throw invalidArgument(`run(argv) needs an array of strings (the arguments without the program name), got ${describe(argv)}`)
      }
      return native.run(argv)
    })
  }

  function shutdown(signal) {
    if (signal !== undefined && signal !== null && !Number.isInteger(signal)) {
      const got = typeof signal === 'number' ? String(signal) : describe(signal)
      throw invalidArgument(`shutdown(signal) needs a signal number (an integer) or nothing, got ${got}`)
    }
    native.shutdown(signal)
  }

  return { Engine, validate, evaluate, run, shutdown }
}

module.exports = { bind }
