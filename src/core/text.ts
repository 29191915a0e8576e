/**
 * Text from outside (container labels and names, check output, records in etcd) shown on a
 * terminal: control characters and escape sequences are made visible as `\xHH`, so nothing a
 * container writes can move the cursor, recolour, retitle or clear an operator's screen.
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

export function printable(text: string): string {
  return text.replace(CONTROL, (char) => `\\x${char.charCodeAt(0).toString(16).padStart(2, '0')}`)
}
