import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Etcd3 } from 'etcd3'
import { afterAll, describe, expect, it } from 'vitest'
import { startDevEtcd, type DevEtcd } from '../../src/core/dev-etcd.js'
import { formatErrorLine, UsageError } from '../../src/core/errors.js'

/** `watch --dev`'s throwaway etcd, started from the real `etcd` binary on PATH. */
describe('startDevEtcd', () => {
  const started: DevEtcd[] = []

  afterAll(async () => {
    await Promise.all(started.map((etcd) => etcd.stop()))
  })

  it('Given an etcd password in the environment (where a --etcd-password flag ends up), When the dev etcd starts, Then the child does not inherit it', async () => {
    const etcd = await startDevEtcd({ env: { ...process.env, DISCOVERY_ETCD_PASSWORD: 'dev-secret-123', ETCDCTL_PASSWORD: 'dev-secret-456' } })
    started.push(etcd)
    const environ = readFileSync(`/proc/${etcd.pid}/environ`, 'utf8')
    expect(environ).not.toContain('dev-secret-123')
    expect(environ).not.toContain('dev-secret-456')
    expect(environ).toContain('PATH=')
  })

  it('Given etcd on PATH, When started, Then it answers on a loopback port, holds a key, and stop() ends it and removes its data dir', async () => {
    // When
    const etcd = await startDevEtcd()
    started.push(etcd)
    // Then: a loopback client URL and a data dir under the temp dir
    expect(etcd.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(statSync(etcd.dataDir).isDirectory()).toBe(true)
    expect(etcd.dataDir.startsWith(os.tmpdir())).toBe(true)

    // Then: it is a working etcd
    const client = new Etcd3({ hosts: etcd.endpoint })
    try {
      await client.put('/dev-etcd-test/key').value('hello')
      expect(await client.get('/dev-etcd-test/key').string()).toBe('hello')
    } finally {
      client.close()
    }

    // When stopped
    await etcd.stop()
    // Then: the process is gone and so is the data dir; a second stop() is harmless
    expect(existsSync(etcd.dataDir)).toBe(false)
    expect(processAlive(etcd.pid)).toBe(false)
    await etcd.stop()
  })

  it('Given two dev etcds at once, When started, Then they get different ports and data dirs', async () => {
    // When
    const [a, b] = await Promise.all([startDevEtcd(), startDevEtcd()])
    started.push(a, b)
    // Then
    expect(a.endpoint).not.toBe(b.endpoint)
    expect(a.dataDir).not.toBe(b.dataDir)
    await Promise.all([a.stop(), b.stop()])
    expect(existsSync(a.dataDir) || existsSync(b.dataDir)).toBe(false)
  })

  it('Given a PATH without etcd, When started, Then a UsageError says how to get one and no temp dir is left', async () => {
    // Given
    const emptyBin = mkdtempSync(path.join(os.tmpdir(), 'no-etcd-bin-'))
    const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'dev-etcd-parent-'))
    try {
      // When
      const error = await startDevEtcd({ env: { PATH: emptyBin }, tmpDir }).then(
        () => undefined,
        (caught: unknown) => caught,
      )
      // Then
      expect(error).toBeInstanceOf(UsageError)
      expect((error as UsageError).exitCode).toBe(2)
      expect(formatErrorLine(error as UsageError)).toContain('install etcd (Debian: apt-get install etcd-server) or pass --etcd-endpoints')
      expect(readdirSync(tmpDir)).toEqual([])
    } finally {
      rmSync(emptyBin, { recursive: true, force: true })
      rmSync(tmpDir, { recursive: true, force: true })
    }
  })

  it('Given a binary that is not etcd and exits at once, When started, Then it fails naming it and removes the data dir', async () => {
    // Given
    const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'dev-etcd-parent-'))
    try {
      // When
      const error = await startDevEtcd({ etcdBinary: '/bin/false', tmpDir }).then(
        () => undefined,
        (caught: unknown) => caught as Error,
      )
      // Then
      expect(error?.message).toMatch(/the dev etcd \(\/bin\/false\) stopped at start-up \(exit 1\)/)
      expect(readdirSync(tmpDir)).toEqual([])
    } finally {
      rmSync(tmpDir, { recursive: true, force: true })
    }
  })
})

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
