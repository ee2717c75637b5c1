import { InvalidArgumentError } from "commander";

// Option parsers shared by the command descriptors. Kept apart from main.ts so a descriptor
// needs nothing but commander to declare its options.

export function positiveInt(name: string) {
  return (v: string): number => {
    if (!/^[0-9]+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
    return Number(v);
  };
}

export function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}
