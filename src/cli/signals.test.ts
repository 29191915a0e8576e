import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { boundOutput } from './signals.js'

/** A stream whose reader has stopped: every chunk stays queued until `release()`. */
function stalled(): { stream: NodeJS.WriteStream; release: () => void } {
  const waiting: (() => void)[] = []
  const stream = new Writable({
    highWaterMark: 1024,
    write(_chunk, _encoding, done) {
      waiting.push(done)
    },
  }) as unknown as NodeJS.WriteStream
  return {
    stream,
    release: () => {
      // Let everything through from now on.
      ;(stream as unknown as Writable)._write = (_c, _e, done) => done()
      for (const done of waiting.splice(0)) done()
    },
  }
}

describe('boundOutput', () => {
  it('Given a reader that stopped reading, When 10 MiB are written, Then at most the limit (plus one write) is queued, the rest dropped, every callback runs, and the drop is reported once it drains', async () => {
    const { stream, release } = stalled()
    const resumed: number[] = []
    boundOutput(stream, 64 * 1024, (dropped) => resumed.push(dropped))
    const line = `${'x'.repeat(1023)}\n`
    let callbacks = 0
    for (let i = 0; i < 10 * 1024; i++) stream.write(line, () => callbacks++)
    // Then the queue is bounded
    expect(stream.writableLength).toBeLessThanOrEqual(64 * 1024 + line.length)
    await new Promise((resolve) => setImmediate(resolve))
    const queuedWrites = Math.ceil((64 * 1024) / line.length)
    expect(callbacks).toBeGreaterThanOrEqual(10 * 1024 - queuedWrites - 1)
    // When the reader reads again, Then the queue drains and the number dropped is told
    release()
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(stream.writableLength).toBe(0)
    expect(callbacks).toBe(10 * 1024)
    expect(resumed).toHaveLength(1)
    expect(resumed[0]).toBeGreaterThan(10 * 1024 - queuedWrites - 2)
    // …and writes go through again
    expect(stream.write('after\n')).toBe(true)
  })

  it('Given a reader that keeps up, When written, Then nothing is dropped or reported', async () => {
    const resumed: number[] = []
    const chunks: string[] = []
    const stream = new Writable({ write: (chunk, _e, done) => (chunks.push(String(chunk)), done()) }) as unknown as NodeJS.WriteStream
    boundOutput(stream, 1024, (dropped) => resumed.push(dropped))
    for (let i = 0; i < 1000; i++) stream.write(`${i}\n`)
    await new Promise((resolve) => setImmediate(resolve))
    expect(chunks).toHaveLength(1000)
    expect(resumed).toEqual([])
  })
})
