import { describe, expect, it } from 'vitest'
import { describeAgentEvent } from './event-text.js'

describe('describeAgentEvent', () => {
  it('Given a health change whose check output carries escapes, When described, Then the line holds no control character', () => {
    const line = describeAgentEvent({ type: 'health.changed', service: 'web', id: 'w1', from: 'passing', to: 'critical', output: '\u001b[2J\rboom' })
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/)
    expect(line).toContain('\\x1b[2J\\x0dboom')
  })
})
