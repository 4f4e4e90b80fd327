/** Extra `graft doctor` lines (other engines), registered by modules that must load without tfjs (onnxruntime). */

/** The registered checks, in registration order. */
export const doctorChecks: Array<{ name: string; check: () => Promise<string> }> = [];

/** Adds a line to `graft doctor` for another engine (its check returns a one-line status). */
export function registerDoctorCheck(name: string, check: () => Promise<string>): void {
  if (!doctorChecks.some((c) => c.name === name)) doctorChecks.push({ name, check });
}
