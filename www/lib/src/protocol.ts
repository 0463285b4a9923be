/** Messages between the page and the worker. */
export type ToWorker =
  | { type: "create"; id: number; options: Record<string, unknown> }
  | { type: "generate"; id: number; options: Record<string, unknown> }
  | { type: "benchKernels"; id: number; options: Record<string, unknown> }
  | { type: "benchForward"; id: number; options: Record<string, unknown> }
  | { type: "abort"; id: number };

export type FromWorker =
  | { type: "progress"; id: number; event: unknown }
  | { type: "step"; id: number; event: unknown }
  | { type: "result"; id: number; value: unknown }
  | { type: "error"; id: number; kind: string; message: string };

/** A message without its id (distributes over the union). */
export type WithoutId<T> = T extends unknown ? Omit<T, "id"> : never;
