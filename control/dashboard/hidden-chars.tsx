/**
 * Characters that change how text reads without being seen: bidirectional overrides,
 * isolates and marks (they reorder what follows them, "Trojan Source"; the Arabic letter
 * mark U+061C too), zero-width ones and the BOM.
 * A reviewer reading a fix, or what the agent read and wrote, must see them: each is drawn
 * as its code point, marked.
 */
export const HIDDEN = /[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/** Whether `text` holds any of them. */
export function hasHidden(text: string): boolean {
  return text.search(HIDDEN) !== -1;
}

/** A text with its hidden characters drawn as marked code points (JSX escapes the rest). */
export function Shown(props: { text: string; what?: string }) {
  const { text } = props;
  if (!hasHidden(text)) return <>{text}</>;
  const title = `a character that is not seen: it changes how the ${props.what ?? 'text'} reads`;
  const parts: unknown[] = [];
  let at = 0;
  for (const m of text.matchAll(HIDDEN)) {
    parts.push(text.slice(at, m.index));
    parts.push(<span class="hidden-char" title={title}>{`U+${m[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`}</span>);
    at = m.index + m[0].length;
  }
  parts.push(text.slice(at));
  return <>{parts}</>;
}
