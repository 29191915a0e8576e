import type { LeaderElection } from './election.js'

/** Work done for one election term; thrown away when the term ends. */
export interface TermSession {
  readonly term: string
  start(): Promise<void>
  stop(): void
}

/**
 * Runs one session per term while the election says this agent may act, and stops it the
 * moment it may not (a pause that resumes the same term opens a new session of that term).
 * What the leader duties and the Swarm duty share.
 */
export class TermSessions {
  private session?: TermSession

  constructor(
    election: LeaderElection,
    private readonly open: (term: string) => TermSession,
    private readonly onError: (error: unknown) => void,
  ) {
    election.on('acting', (acting, term) => {
      if (acting && term) this.begin(term)
      else this.end()
    })
  }

  get running(): boolean {
    return this.session !== undefined
  }

  stop(): void {
    this.end()
  }

  private begin(term: string): void {
    if (this.session?.term === term) return
    this.end()
    const session = this.open(term)
    this.session = session
    void session.start().catch((error) => this.onError(error))
  }

  private end(): void {
    const session = this.session
    this.session = undefined
    session?.stop()
  }
}
