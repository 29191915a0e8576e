import { BaseCommand } from '../cli/base-command.js'
import { runDoctor, type DoctorReport } from '../services/doctor.js'

export default class Doctor extends BaseCommand {
  static override summary = 'Diagnose Docker, etcd and the configuration'
  static override description = `Runs an ordered list of checks and prints ✓, ✗ or ! with a hint to fix each failure. It never hangs: an unreachable endpoint is reported within seconds.\n\nExit codes: 0 all checks pass, 1 a check failed, 2 bad usage, 3 never (unreachable dependencies are reported as failed checks).`
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --etcd-endpoints 10.0.0.1:2379,10.0.0.2:2379 --json',
  ]

  async run(): Promise<DoctorReport> {
    const { flags } = await this.parse(Doctor)
    const report = await runDoctor(this.resolveConfig(flags), process.env)
    if (!this.jsonEnabled()) {
      const t = this.theme
      for (const check of report.checks) {
        const icon = !check.ok ? t.fail : check.warning ? t.warn : t.ok
        this.out(`${icon} ${check.name}: ${check.detail}`)
        if (check.hint && (!check.ok || check.warning)) this.out(`  ${t.muted(`→ ${check.hint}`)}`)
      }
    }
    if (!report.ok) process.exitCode = 1
    return report
  }
}
