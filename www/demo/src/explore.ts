// One seed explored: a sweep (the same image at several guidance scales or step counts) as one labelled grid, and a
// blend (the class embedding moved from one class to another) as one labelled strip. Each cell is its own generation
// of one image with the same seed (a batch would give each image other noise).
import { DitError } from "dit-wasm";
import { gridFigure, type Picture } from "./gallery";
import { samplerName, type Settings } from "./settings";

/** Makes one picture of `s`; `what` names the cell in the progress line ("Sweep 2/4: "). */
export type Render = (s: Settings, what: string) => Promise<Picture>;

export type SweepKind = "cfg" | "steps";

/** The blend strip's weights of the second class. */
export const ALPHAS = [0, 0.25, 0.5, 0.75, 1];

/** The values of a sweep typed as "1, 2, 4, 8", or an `invalid-input` error saying what is wrong with them. */
export function sweepValues(text: string, kind: SweepKind): number[] {
  const parts = text.split(/[\s,;]+/).filter(Boolean);
  const values = parts.map(Number);
  const bad = parts.find((p, i) => !Number.isFinite(values[i]) || values[i] <= 0 || (kind === "steps" && !Number.isInteger(values[i])));
  if (bad !== undefined || values.length < 2 || values.length > 12)
    throw new DitError(
      "invalid-input",
      `The sweep's values must be 2 to 12 ${kind === "steps" ? "whole numbers" : "numbers"} above 0, separated by commas${bad !== undefined ? ` (“${bad}” is not one)` : ""}.`,
    );
  return values;
}

/** The grid of `base` at each of `values` of `kind`; `name` gives a class's name. */
export async function sweep(base: Settings, kind: SweepKind, values: number[], render: Render, name: (c: number) => string): Promise<HTMLElement> {
  const cells: { label: string; picture: Picture }[] = [];
  for (const [i, v] of values.entries()) {
    const s = kind === "cfg" ? { ...base, cfgScale: v } : { ...base, steps: v };
    cells.push({ label: kind === "cfg" ? `guidance ${v}` : `${v} steps`, picture: await render(s, `Sweep ${i + 1}/${values.length}: `) });
  }
  const what = kind === "cfg" ? `guidance ${values.join(", ")}` : `${values.join(", ")} steps`;
  const fixed = kind === "cfg" ? `${base.steps} steps` : `guidance ${base.cfgScale}`;
  return gridFigure("sweep", `${name(base.classLabel)}: ${what}`, `seed ${base.seed} · ${fixed} · ${samplerName(base.sampler)}`, cells);
}

/** The strip from `base`'s class (alpha 0) to `other` (alpha 1). */
export async function blend(base: Settings, other: number, render: Render, name: (c: number) => string): Promise<HTMLElement> {
  const cells: { label: string; picture: Picture }[] = [];
  for (const [i, alpha] of ALPHAS.entries()) {
    const s = { ...base, blend: { with: other, alpha } };
    cells.push({ label: `α ${alpha}`, picture: await render(s, `Blend ${i + 1}/${ALPHAS.length}: `) });
  }
  const sub = `seed ${base.seed} · guidance ${base.cfgScale} · ${base.steps} steps · ${samplerName(base.sampler)}`;
  return gridFigure("blend", `${name(base.classLabel)} → ${name(other)}`, sub, cells);
}
