/* Types of `@policylayer/intercept`: the in-process policy engine and the CLI entry points. */

export interface EngineOptions {
  /** The policy as YAML text. Pass exactly one of `policy` and `policyFile`. */
  policy?: string
  /** Path of a policy file. */
  policyFile?: string
  /**
   * Where counters live: `'memory'` (default), `'sqlite:PATH'` (shared by processes on this
   * machine, survives restarts), or a Redis DSN — `'redis://[user:pass@]host:port/db'`,
   * `'rediss://…'` (TLS), `'unix:///path/to/socket'`, `'redis+cluster://node:port'` — shared with every proxy and engine
   * that uses it. With Redis, prefer the `…Async` methods: they keep the round trip off the
   * JavaScript thread.
   */
  state?: string
  /** With Redis: isolates this deployment's counters from others in the same Redis (default `'intercept'`). */
  statePrefix?: string
  /**
   * While the store is unavailable, calls that need counters are denied with reason
   * `state_unavailable` (`'closed'`, the default) or allowed with `unenforced` set (`'open'`).
   */
  stateFailMode?: 'closed' | 'open'
  /** Identity used for calls that name none (grants, identity-scoped counters). */
  identity?: string
  /** Session used for calls that name none (session-scoped counters). */
  session?: string
}

export interface ToolCall {
  /** The tool name, as in `tools/call` `params.name`. */
  tool: string
  /** The tool arguments; anything but a JSON object is denied. */
  args?: any
  identity?: string
  session?: string
  /** `clientInfo.name` of the MCP client, for `client.name` conditions. */
  clientName?: string
}

export interface Decision {
  /** `shadow_deny`: a `mode: shadow` rule would have denied or held the call; it may go ahead. */
  decision: 'allow' | 'deny' | 'require_approval' | 'shadow_deny'
  /** Why the call was decided this way. */
  reason:
    | 'rule'
    | 'hidden'
    | 'default_deny'
    | 'not_granted'
    | 'rate_limit'
    | 'invalid_arguments'
    | 'state_unavailable'
  tool: string
  /** The deciding rule's name, or a marker such as `(hidden)` or `(default deny)`. */
  rule?: string
  /** The message for the agent (absent when allowed). */
  message?: string
  /** For rate limits: whole seconds until the same call could pass. */
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

/** A compiled policy with its counter store. */
export declare class Engine {
  /** Throws an Error listing every validation error (with line and column) if the policy is invalid. */
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
  /** `evaluate` on a worker thread: the event loop never waits for a remote store. */
  evaluateAsync(call: ToolCall): Promise<Decision>
  /** `commit` on a worker thread. */
  commitAsync(decision: Decision): Promise<boolean>
  /** `rollback` on a worker thread; rejects if the store cannot be reached. */
  rollbackAsync(decision: Decision): Promise<boolean>
  /** Drops hidden, ungranted and (with `default: deny`) unlisted tools from a `tools/list` result's `tools`. */
  filterTools<T extends { name: string }>(tools: T[], identity?: string): T[]
}

/** Validates a policy given as YAML text or a file path. Never throws for policy errors. */
export declare function validate(textOrPath: string): ValidationResult

/** One-shot: compiles the policy (text or path) and evaluates one call with fresh memory counters. */
export declare function evaluate(policyPathOrYaml: string, call: ToolCall): Decision

/** Runs the `intercept` command line (arguments without the program name); resolves with the exit code. */
export declare function run(argv: string[]): Promise<number>

/**
 * Asks a running `run()` to shut down, as the CLI does on SIGINT/SIGTERM/SIGHUP. With the
 * signal's number, a command other than the proxy resolves at once with 128 + signal.
 */
export declare function shutdown(signal?: number | undefined | null): void
