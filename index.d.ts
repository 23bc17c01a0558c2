/* Types of `@policylayer/intercept`: the in-process policy engine and the CLI entry points. docs/node.md has the details. */

export interface EngineOptions {
  /** The policy as YAML text. Pass exactly one of `policy` and `policyFile`. */
  policy?: string | null
  /** Path of a policy file. */
  policyFile?: string | null
  /**
   * Where counters live: `'memory'` (default), `'sqlite:PATH'` (shared by processes on this
   * machine, survives restarts), or a Redis DSN — `'redis://[user:pass@]host:port/db'`,
   * `'rediss://…'` (TLS), `'unix:///path/to/socket'`, `'redis+cluster://node:port'` — shared with every proxy and engine
   * that uses it. With Redis, prefer the `…Async` methods: they keep the round trip off the
   * JavaScript thread.
   */
  state?: string | null
  /** With Redis: isolates this deployment's counters from others in the same Redis (default `'intercept'`). */
  statePrefix?: string | null
  /**
   * While the store is unavailable, calls that need counters are denied with reason
   * `state_unavailable` (`'closed'`, the default) or allowed with `unenforced` set (`'open'`).
   */
  stateFailMode?: 'closed' | 'open' | null
  /** Identity used for calls that name none (grants, identity-scoped counters). */
  identity?: string | null
  /** Session used for calls that name none (session-scoped counters). */
  session?: string | null
}

export interface ToolCall {
  /** The tool name, as in `tools/call` `params.name`. */
  tool: string
  /**
   * The tool arguments (`params.arguments`); anything but a JSON object (or null) is denied.
   * Must be JSON-representable: a BigInt, function, symbol, NaN, Infinity, `undefined` in an
   * array, a cycle or more than 128 levels of nesting is an `INTERCEPT_INVALID_ARGUMENT` error.
   */
  args?: unknown
  identity?: string | null
  session?: string | null
  /** `clientInfo.name` of the MCP client, for `client.name` conditions. */
  clientName?: string | null
}

/** What was decided about a call. */
export type Verdict = 'allow' | 'deny' | 'require_approval' | 'shadow_deny'

/** Why a call was decided this way (docs/policy.md, "Decisions and messages"). */
export type Reason =
  /** A rule decided: allowed by the first allow or evaluate rule whose conditions held (named in `rule`), denied, or held for approval. */
  | 'rule'
  /** Allowed with no rule deciding, by the policy's default. */
  | 'default_allow'
  /** Allowed with no rule deciding, under `default: deny`, because the tool is listed. */
  | 'listed'
  | 'hidden'
  | 'default_deny'
  | 'not_granted'
  /** A `rate_limit` counter is over its limit. */
  | 'rate_limit'
  /** A `state` counter (a budget) would go over its limit. */
  | 'budget'
  | 'invalid_arguments'
  | 'state_unavailable'

export interface Decision {
  /** `shadow_deny`: a `mode: shadow` rule would have denied or held the call; it may go ahead. */
  decision: Verdict
  /** Why the call was decided this way. */
  reason: Reason
  tool: string
  /**
   * The deciding rule's name (for an allowed call, the rule that allowed it; absent when no
   * rule decided), or a marker such as `(hidden)` or `(default deny)`.
   */
  rule?: string
  /** The message for the agent (absent when allowed). */
  message?: string
  /** For rate limits and budgets: whole seconds until the same call could pass. */
  retryAfterSeconds?: number
  /** For `require_approval`: how long a human has to decide. */
  approvalTimeoutSeconds?: number
  /** Handle of the counters this call reserved; settle it with `commit` or `rollback`. */
  reservation?: number
  /** Set when allowed without checking or counting its limits (store unavailable, fail mode open): why. */
  unenforced?: string
}

export interface ValidationError {
  /** The message, led by the rule path, e.g. `tools.t.rules[0]: evaluate rules must have at least one condition`. */
  message: string
  /** 1-based line. */
  line: number
  /** 1-based column. */
  column: number
  /** Where in the policy, e.g. `tools.t.rules[0].conditions[1]`. */
  path: string
}

export interface ValidationResult {
  valid: boolean
  errors: ValidationError[]
}

/** The `code` of every error this package throws. */
export type ErrorCode =
  /** A missing argument, a wrong type, an unknown option or field (thrown as a `TypeError`). */
  | 'INTERCEPT_INVALID_ARGUMENT'
  /** The policy is not valid: `errors` lists every problem. */
  | 'INTERCEPT_INVALID_POLICY'
  /** The policy file does not exist. */
  | 'INTERCEPT_POLICY_NOT_FOUND'
  /** The policy file exists but cannot be read. */
  | 'INTERCEPT_POLICY_UNREADABLE'
  /** `state` or `statePrefix` is malformed. */
  | 'INTERCEPT_INVALID_STATE'
  /** The counter store cannot be opened or used. */
  | 'INTERCEPT_STATE_UNAVAILABLE'
  /** No native addon could be loaded for this platform (thrown by `require`/`import` itself). */
  | 'INTERCEPT_NATIVE_MISSING'

/** The shape of every error this package throws. */
export interface InterceptError extends Error {
  code: ErrorCode
  /** With `INTERCEPT_INVALID_POLICY`: every problem, with its line and column. */
  errors?: ValidationError[]
}

/** A `tools/list` result, or anything with a `tools` array. */
export interface ToolList<T> {
  tools: T[]
  nextCursor?: string
}

/** A compiled policy with its counter store. */
export declare class Engine {
  /**
   * Throws `INTERCEPT_INVALID_POLICY` (with `errors`) if the policy is invalid or empty,
   * `INTERCEPT_POLICY_NOT_FOUND` / `INTERCEPT_POLICY_UNREADABLE` for `policyFile`,
   * `INTERCEPT_INVALID_STATE` / `INTERCEPT_STATE_UNAVAILABLE` for `state`, and
   * `INTERCEPT_INVALID_ARGUMENT` for unknown options and wrong types.
   */
  constructor(options: EngineOptions)
  /** Evaluates one call. Allowed calls reserve their counters: settle them with `commit` or `rollback`. */
  evaluate(call: ToolCall): Decision
  /** The tool ran: keep the reservation. Returns false if there was nothing to settle. */
  commit(decision: Decision): boolean
  /** The tool failed: give the quota back. Returns false if there was nothing to settle. */
  rollback(decision: Decision): boolean
  /**
   * Puts a new policy (YAML text or a file path) in force for every later call; counters are kept.
   * Throws, listing every error with line and column, and keeps the policy in force if it is invalid.
   */
  reload(policyOrPath: string): void
  /** `evaluate` on a worker thread: the event loop never waits for a remote store. Rejects on bad arguments. */
  evaluateAsync(call: ToolCall): Promise<Decision>
  /** `commit` on a worker thread; rejects with `INTERCEPT_STATE_UNAVAILABLE` if the store cannot be reached. */
  commitAsync(decision: Decision): Promise<boolean>
  /** `rollback` on a worker thread; rejects with `INTERCEPT_STATE_UNAVAILABLE` if the store cannot be reached. */
  rollbackAsync(decision: Decision): Promise<boolean>
  /**
   * Drops hidden, ungranted and (with `default: deny`) unlisted tools, and entries without a
   * string `name`. Takes the `tools` array, or a whole `tools/list` result, returned with its
   * other fields (such as `nextCursor`) and `tools` filtered. The kept entries are the same objects.
   */
  filterTools<T extends { name: string }>(tools: T[], identity?: string | null): T[]
  filterTools<T extends { name: string }, R extends ToolList<T>>(result: R, identity?: string | null): R
}

/**
 * Validates a policy given as YAML text or a file path. Never throws for policy errors; a single
 * line without YAML mapping syntax is a path, and throws `INTERCEPT_POLICY_NOT_FOUND` if it does not exist.
 */
export declare function validate(textOrPath: string): ValidationResult

/** One-shot: compiles the policy (text or path) and evaluates one call with fresh memory counters. */
export declare function evaluate(policyPathOrYaml: string, call: ToolCall): Decision

/** Runs the `intercept` command line (arguments without the program name); resolves with the exit code. */
export declare function run(argv: string[]): Promise<number>

/**
 * Asks a running `run()` to shut down, as the CLI does on SIGINT/SIGTERM/SIGHUP. With the
 * signal's number, a command other than the proxy resolves at once with 128 + signal.
 */
export declare function shutdown(signal?: number | null): void
