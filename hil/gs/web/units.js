// Typed, unit-aware command arguments, checked in the page as the CLI checks them
// (hil/gs/units.py and Mission.typed_value): `5km/h`, `0.05m/s`, `90deg`, `2min`.
// A bare number is in the argument's own unit; a unit of another dimension is an error.
// The service parses the same text again and has the last word.

// unit -> [dimension, factor to the dimension's base unit]; the same table as hil/gs/units.py.
export const UNITS = {
  "m": ["length", 1.0],
  "mm": ["length", 1e-3],
  "cm": ["length", 1e-2],
  "km": ["length", 1e3],
  "s": ["time", 1.0],
  "ms": ["time", 1e-3],
  "us": ["time", 1e-6],
  "min": ["time", 60.0],
  "h": ["time", 3600.0],
  "d": ["time", 86400.0],
  "m/s": ["speed", 1.0],
  "m/h": ["speed", 1 / 3600],
  "km/h": ["speed", 1 / 3.6],
  "cm/s": ["speed", 1e-2],
  "mm/s": ["speed", 1e-3],
  "mi/h": ["speed", 0.44704],
  "m/h/s": ["acceleration", 1 / 3600],
  "m/s2": ["acceleration", 1.0],
  "deg": ["angle", Math.PI / 180],
  "rad": ["angle", 1.0],
  "cdeg": ["angle", Math.PI / 18000],
  "A": ["current", 1.0],
  "mA": ["current", 1e-3],
  "V": ["voltage", 1.0],
  "mV": ["voltage", 1e-3],
  "W": ["power", 1.0],
  "mW": ["power", 1e-3],
  "%": ["fraction", 1.0],
  "degC": ["temperature", 1.0],
  "B": ["size", 1.0],
  "KiB": ["size", 1024.0],
};

const AMBIGUOUS = { "mph": "use m/h (metres per hour) or mi/h (miles per hour)" };

// The wire types' bounds, for arguments the dictionary gives no range (protocols/dictionary.py).
export const TYPE_BOUNDS = {
  u8: [0, 255], u16: [0, 65535], u32: [0, 4294967295],
  i8: [-128, 127], i16: [-32768, 32767], i32: [-2147483648, 2147483647],
  f32: [-3.4028234663852886e38, 3.4028234663852886e38],
};

const NUMBER = /^\s*([-+]?0[xX][0-9a-fA-F]+|[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$/;

export class ArgError extends Error {}

// Python's repr of a short string, so messages read as the CLI's do.
const repr = (s) => `'${s}'`;

// Python's `{:g}`: six significant digits, no trailing zeros.
export function fmtG(v) {
  if (Number.isNaN(v)) return "nan";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (v === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(v)));
  if (exp < -4 || exp >= 6) {
    const [m, e] = v.toExponential(5).split("e");
    const n = Number(e);
    return `${String(Number(m))}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
  }
  return String(Number(v.toPrecision(6)));
}

// `5km/h` -> [5, "km/h"]; `12` -> [12, null].
export function parseQuantity(text) {
  const m = NUMBER.exec(text);
  if (!m) throw new ArgError(`expected a number with an optional unit (e.g. 5, 0.05m/s), got ${repr(text)}`);
  const num = m[1];
  const unit = m[2] || null;
  const value = /^[-+]?0[xX]/.test(num) ? (num.startsWith("-") ? -1 : 1) * parseInt(num.replace(/^[-+]?0[xX]/, ""), 16)
    : Number(num);
  return [value, unit];
}

// `value` in `fromUnit` expressed in `toUnit`; the same dimension is required.
export function convert(value, fromUnit, toUnit) {
  if (fromUnit in AMBIGUOUS) throw new ArgError(`unit ${repr(fromUnit)} is ambiguous: ${AMBIGUOUS[fromUnit]}`);
  if (fromUnit === toUnit) return value;
  const src = UNITS[fromUnit];
  if (src === undefined) {
    throw new ArgError(`unknown unit ${repr(fromUnit)}; known units: ${Object.keys(UNITS).sort().join(", ")}`);
  }
  const dst = UNITS[toUnit];
  if (dst === undefined) throw new ArgError(`the dictionary's unit ${repr(toUnit)} has no conversion; give a bare number`);
  if (src[0] !== dst[0]) throw new ArgError(`unit mismatch: expected a ${dst[0]} (${toUnit}), got ${fromUnit} (${src[0]})`);
  return value * src[1] / dst[1];
}

// The range an argument is checked against: the dictionary's, else its type's.
export function argRange(arg) {
  const bounds = TYPE_BOUNDS[arg.type] || [null, null];
  return [arg.min ?? bounds[0], arg.max ?? bounds[1]];
}

// The labels of an enum argument that its range allows, in value order.
export function allowedLabels(arg) {
  const labels = Object.entries(arg.enum).sort((a, b) => a[1] - b[1]);
  const lo = arg.min ?? labels[0][1];
  const hi = arg.max ?? labels[labels.length - 1][1];
  return labels.filter(([, v]) => lo <= v && v <= hi).map(([label]) => label);
}

// One argument's text as a checked value (converted to the argument's unit), or an ArgError
// with the CLI's message, word for word (Mission.typed_value and Dictionary.coerce).
export function checkArg(cmd, arg, text) {
  const where = `${cmd}.${arg.name}`;
  if (arg.type === "bytes") {
    const hex = text.replace(/\s+/g, "");
    if (!/^([0-9a-fA-F]{2})*$/.test(hex)) throw new ArgError(`${where}: expected hex octets, got ${repr(text)}`);
    if (arg.length && hex.length / 2 !== arg.length) {
      throw new ArgError(`${where}: expected ${arg.length} octets, got ${hex.length / 2}`);
    }
    return hex;
  }
  const isEnum = Boolean(arg.enum && Object.keys(arg.enum).length);
  const notOneOf = () => new ArgError(`${where}: expected one of ${allowedLabels(arg).join(", ")}, got ${repr(text)}`);
  let value;
  if (isEnum && !NUMBER.test(text)) {
    const found = Object.entries(arg.enum).find(([label]) => label.toUpperCase() === text.toUpperCase());
    if (!found) throw notOneOf();
    value = found[1];
  } else {
    let unit;
    try {
      [value, unit] = parseQuantity(text);
    } catch (e) {
      throw new ArgError(`${where}: ${e.message}`);
    }
    if (unit !== null) {
      if (!arg.unit) throw new ArgError(`${where}: takes a bare number (no unit), got ${repr(text)}`);
      value = convert(value, unit, arg.unit);
    }
    if (arg.type !== "f32" && Number.isFinite(value) && Math.abs(value - Math.round(value)) <= 1e-9) {
      value = Math.round(value); // a unit conversion's rounding noise
    }
  }
  if (arg.type !== "f32" && !Number.isInteger(value)) {
    throw new ArgError(`${where}: expected an integer (${arg.type}), got ${repr(text)}`);
  }
  const [lo, hi] = argRange(arg);
  if (!Number.isFinite(value) || (lo !== null && value < lo) || (hi !== null && value > hi)) {
    if (isEnum) throw notOneOf();
    const unit = arg.unit ? ` ${arg.unit}` : "";
    throw new ArgError(`${where}: expected ${fmtG(lo)}..${fmtG(hi)}${unit}, got ${fmtG(value)}`);
  }
  if (isEnum && !Object.values(arg.enum).includes(value)) throw notOneOf();
  return value;
}
