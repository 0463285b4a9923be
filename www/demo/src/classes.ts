// The class picker: a text box that searches class names (ImageNet's with their synonyms: "tabby cat" finds 281
// "tabby, tabby cat") and numbers, in the ARIA combobox pattern (an input owning a listbox of options; the arrows move,
// Enter picks, Escape closes).

/** How many matches the list shows at once (the names are searched, not scrolled through). */
const SHOWN = 50;

export interface Entry {
  index: number;
  name: string;
  /** The synonyms besides the name ("tabby cat" for "tabby"), shown beside it in the list. */
  also: string;
  /** The name and its synonyms, lower case. */
  search: string;
}

/** The classes to search: `names[i]` for class i, `synonyms[i]` (e.g. "tabby, tabby cat") searched too. */
export function classEntries(names: string[], synonyms?: string[]): Entry[] {
  return names.map((name, index) => {
    const also = (synonyms?.[index] ?? "").split(", ").filter((w) => w && w !== name);
    return { index, name, also: also.join(", "), search: [name, ...also].join(", ").toLowerCase() };
  });
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * The classes that match `query`, best first: a number matches by its digits (the number itself first); words match
 * names and synonyms containing them, the name itself first, then names starting with them, then synonyms or words
 * starting with them, then the rest, each by class number.
 */
export function searchClasses(entries: Entry[], query: string): Entry[] {
  const q = query.trim().toLowerCase().replace(/^(\d+)\s*·.*$/, "$1");
  if (!q) return entries;
  if (/^\d+$/.test(q)) return entries.filter((e) => String(e.index).startsWith(q)).sort((a, b) => String(a.index).length - String(b.index).length || a.index - b.index);
  const word = new RegExp(`(^|[ ,-])${escape(q)}`);
  const rank = (e: Entry) => {
    const name = e.name.toLowerCase();
    return name === q ? 0 : name.startsWith(q) ? 1 : e.search.split(", ").includes(q) ? 2 : word.test(e.search) ? 3 : 4;
  };
  return entries
    .filter((e) => e.search.includes(q))
    .map((e) => [rank(e), e] as const)
    .sort((a, b) => a[0] - b[0] || a[1].index - b[1].index)
    .map(([, e]) => e);
}

export class ClassPicker {
  private entries: Entry[] = [];
  private shown: Entry[] = [];
  private active = -1;
  private current = 0;

  /** `onPick` runs when a class is picked from the list (not while typing). */
  constructor(
    private readonly input: HTMLInputElement,
    private readonly list: HTMLElement,
    private readonly onPick: () => void = () => {},
  ) {
    input.addEventListener("input", () => this.open(input.value));
    input.addEventListener("focus", () => input.select());
    input.addEventListener("blur", () => {
      this.close();
      this.commit();
    });
    input.addEventListener("keydown", (e) => this.key(e));
    // pointerdown (not click): the input keeps its focus, so blur does not close the list first.
    list.addEventListener("pointerdown", (e) => {
      const li = (e.target as HTMLElement).closest("[role=option]") as HTMLElement | null;
      if (!li) return;
      e.preventDefault();
      this.pick(Number(li.dataset.index));
    });
  }

  /** The classes to offer: `names[i]` for class i, `synonyms[i]` (e.g. "tabby, tabby cat") searched too. */
  setClasses(names: string[], synonyms?: string[]) {
    this.entries = classEntries(names, synonyms);
    this.set(this.current < names.length ? this.current : 0);
  }

  get count() {
    return this.entries.length;
  }

  /** The picked class (after resolving what was typed). */
  get value(): number {
    this.commit();
    return this.current;
  }

  name(index: number): string {
    return this.entries[index]?.name ?? String(index);
  }

  set(index: number) {
    if (!this.entries[index]) return;
    this.current = index;
    this.input.value = `${index} · ${this.entries[index].name}`;
  }

  matches(query: string): Entry[] {
    return searchClasses(this.entries, query);
  }

  /** Takes what was typed: a number or the best match; anything else shows the current class again. */
  commit() {
    const text = this.input.value.trim();
    if (text === `${this.current} · ${this.entries[this.current]?.name}`) return;
    const m = /^\d+$/.test(text) ? this.entries[Number(text)] : this.matches(text)[0];
    this.set(m ? m.index : this.current);
  }

  private open(query: string) {
    this.shown = this.matches(query).slice(0, SHOWN);
    this.active = this.shown.length ? 0 : -1;
    const id = this.list.id;
    this.list.replaceChildren(
      ...this.shown.map((e, i) => {
        const li = document.createElement("li");
        li.id = `${id}-${i}`;
        li.setAttribute("role", "option");
        li.dataset.index = String(e.index);
        const n = document.createElement("span");
        n.className = "num";
        n.textContent = String(e.index);
        li.append(n, e.name);
        if (e.also) {
          const a = document.createElement("span");
          a.className = "also";
          a.textContent = e.also;
          li.append(a);
        }
        return li;
      }),
    );
    if (!this.shown.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = "No class matches";
      this.list.append(li);
    }
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.highlight();
  }

  private close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  private get isOpen() {
    return !this.list.hidden;
  }

  private highlight() {
    [...this.list.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === this.active)));
    const li = this.list.children[this.active] as HTMLElement | undefined;
    if (li?.id) {
      this.input.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    } else this.input.removeAttribute("aria-activedescendant");
  }

  private pick(index: number) {
    this.set(index);
    this.close();
    this.onPick();
  }

  private key(e: KeyboardEvent) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!this.isOpen) return this.open(this.input.value === `${this.current} · ${this.name(this.current)}` ? "" : this.input.value);
      const n = this.shown.length;
      if (n) this.active = (this.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      this.highlight();
    } else if (e.key === "Enter" && this.isOpen && this.active >= 0) {
      // Picks; the page's Enter (generate) waits for the next press.
      e.preventDefault();
      e.stopPropagation();
      this.pick(this.shown[this.active].index);
    } else if (e.key === "Escape" && this.isOpen) {
      e.stopPropagation();
      this.close();
      this.commit();
    }
  }
}
