/**
 * The subset of C printf that perftest's report formats use (%d %u %lu %x %s %f %lf with flags '-' and
 * '0', width and precision), so its format strings can be reproduced character for character.
 */
const spec = /%(-?)(0?)(\d*)(?:\.(\d+))?(l{0,2})([dusxf%])/g;

export function sprintf(format: string, ...args: Array<number | string | bigint>): string {
  let next = 0;
  return format.replace(spec, (_match, left: string, zero: string, width: string, precision: string | undefined, _length: string, conversion: string) => {
    if (conversion === '%') return '%';
    if (next >= args.length) throw new RangeError(`sprintf: too few arguments for ${JSON.stringify(format)}`);
    const value = args[next++]!;
    let text: string;
    switch (conversion) {
      case 'd':
      case 'u':
        text = typeof value === 'bigint' ? value.toString() : String(Math.trunc(Number(value)));
        break;
      case 'x':
        text = (typeof value === 'bigint' ? value : BigInt(Math.trunc(Number(value)))).toString(16);
        break;
      case 'f':
        text = formatFloat(Number(value), precision === undefined ? 6 : Number(precision));
        break;
      default:
        text = String(value);
    }
    const w = width === '' ? 0 : Number(width);
    if (text.length >= w) return text;
    if (left) return text.padEnd(w);
    if (zero && conversion !== 's') {
      const sign = text.startsWith('-') ? '-' : '';
      return sign + text.slice(sign.length).padStart(w - sign.length, '0');
    }
    return text.padStart(w);
  });
}

/** printf's %.Nf, including its spellings of infinities and NaN. */
function formatFloat(value: number, digits: number): string {
  if (Number.isNaN(value)) return '-nan';
  if (!Number.isFinite(value)) return value > 0 ? 'inf' : '-inf';
  return value.toFixed(digits);
}
