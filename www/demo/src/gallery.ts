// The results: one figure per image (the picture, a caption naming its class and settings, a PNG download that
// carries the settings, a link that reproduces it), and labelled grids for sweeps and blends. Newest first.
import { withText } from "./png";
import { describe, toPngText, type Settings } from "./settings";

export interface Picture {
  rgba: Uint8ClampedArray;
  width: number;
  height: number;
  settings: Settings;
  /** The class's name (for a blend: "a → b"). */
  title: string;
  /** The link that reproduces it. */
  link: string;
}

export function drawRgba(canvas: HTMLCanvasElement, rgba: Uint8ClampedArray, w: number, h: number) {
  canvas.width = w;
  canvas.height = h;
  const image = new ImageData(new Uint8ClampedArray(rgba), w, h);
  const draw = () => canvas.getContext("2d")!.putImageData(image, 0, 0);
  draw();
  // A GPU loss wipes the canvas (the browser restores an empty one): draw the image again.
  canvas.oncontextrestored = draw;
}

function make<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function canvasOf(p: Picture, testid: string): HTMLCanvasElement {
  const canvas = make("canvas");
  canvas.setAttribute("data-testid", testid);
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", `${p.title}, ${describe(p.settings)}`);
  drawRgba(canvas, p.rgba, p.width, p.height);
  return canvas;
}

/** A link to download the picture as a PNG with its settings in a `parameters` text chunk (the href comes when written). */
function downloadLink(canvas: HTMLCanvasElement, p: Picture, text: string): HTMLAnchorElement {
  const a = make("a", "action", text);
  a.setAttribute("data-testid", "download");
  const s = p.settings;
  a.download = `dit-${s.classLabel}${s.blend ? `-${s.blend.with}-a${s.blend.alpha}` : ""}-seed${s.seed}${s.batch ? `-${s.batch.index}` : ""}.png`;
  canvas.toBlob(async (blob) => {
    if (!blob) return;
    const png = withText(new Uint8Array(await blob.arrayBuffer()), "parameters", toPngText(s, p.title, p.width));
    a.href = URL.createObjectURL(new Blob([png as BlobPart], { type: "image/png" }));
  }, "image/png");
  return a;
}

function shareLink(p: Picture, text: string): HTMLAnchorElement {
  const a = make("a", "action", text);
  a.setAttribute("data-testid", "share-link");
  a.href = p.link;
  a.title = "A link that makes this image again";
  return a;
}

function copyButton(p: Picture): HTMLButtonElement {
  const b = make("button", "action", "Copy link");
  b.type = "button";
  b.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(new URL(p.link, location.href).href);
      b.textContent = "Copied";
    } catch {
      b.textContent = "Copy failed: use the Link";
    }
    setTimeout(() => (b.textContent = "Copy link"), 2000);
  });
  return b;
}

/** One image with its caption and actions. */
export function resultFigure(p: Picture): HTMLElement {
  const fig = make("figure", "result");
  fig.setAttribute("data-testid", "result-figure");
  const canvas = canvasOf(p, "result");
  const cap = make("figcaption");
  const title = make("span", "title");
  title.append(make("span", "cls", p.title), " ", make("span", "num", `#${p.settings.classLabel}`));
  cap.append(title, make("span", "meta", describe(p.settings)));
  const actions = make("div", "actions");
  actions.append(downloadLink(canvas, p, "Download PNG"), shareLink(p, "Link"), copyButton(p));
  fig.append(canvas, cap, actions);
  return fig;
}

/** A labelled row or grid of pictures that differ in one setting: a sweep (`kind` "sweep") or a blend ("blend"). */
export function gridFigure(kind: "sweep" | "blend", title: string, subtitle: string, cells: { label: string; picture: Picture }[]): HTMLElement {
  const fig = make("figure", `grid ${kind}`);
  fig.setAttribute("data-testid", kind);
  const row = make("div", "cells");
  for (const { label, picture } of cells) {
    const cell = make("figure", "cell");
    cell.setAttribute("data-testid", `${kind}-cell`);
    const canvas = canvasOf(picture, `${kind}-image`);
    const cap = make("figcaption");
    cap.append(make("span", "label", label), " ", shareLink(picture, "link"), " ", downloadLink(canvas, picture, "PNG"));
    cell.append(canvas, cap);
    row.append(cell);
  }
  const cap = make("figcaption");
  cap.append(make("span", "cls", title), make("span", "meta", subtitle));
  fig.append(cap, row);
  return fig;
}
