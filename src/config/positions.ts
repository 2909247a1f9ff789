// Line and column of a data path in a parsed YAML (or JSON) document.
import { isAlias, isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node, type Pair, type YAMLMap } from 'yaml';
import type { Locator, Position, Segment } from './issues.js';

export function offsetToPosition(lineCounter: LineCounter, offset: number): Position {
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/**
 * Walks the AST along `path`. Aliases are followed to their anchors. When the path leaves the
 * tree (a missing key), the deepest node reached is reported: for a missing required key that
 * is the mapping it is missing from.
 */
export function yamlLocator(doc: Document, lineCounter: LineCounter): Locator {
  const resolve = (node: unknown): unknown => (isAlias(node) ? node.resolve(doc) : node);
  const pos = (node: unknown): Position | undefined => {
    const range = (node as Node | null)?.range;
    return range ? offsetToPosition(lineCounter, range[0]) : undefined;
  };

  // Each mapping's keys indexed on first use: normalize locates every upstream and route, and a
  // scan of the mapping per lookup made 20k upstreams take 8 s here.
  const keyIndex = new WeakMap<YAMLMap, Map<string, Pair>>();
  const pairOf = (map: YAMLMap, seg: Segment): Pair | undefined => {
    let index = keyIndex.get(map);
    if (index === undefined) {
      index = new Map();
      for (const p of map.items) if (isPair(p) && isScalar(p.key) && !index.has(String(p.key.value))) index.set(String(p.key.value), p);
      keyIndex.set(map, index);
    }
    return index.get(String(seg));
  };

  return (path, at) => {
    let node: unknown = resolve(doc.contents);
    let found: Position | undefined = pos(node) ?? { line: 1, column: 1 };
    for (let i = 0; i < path.length; i++) {
      const seg = path[i] as Segment;
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = pairOf(node, seg);
        if (!pair) return found;
        if (last && at === 'key') return pos(pair.key) ?? found;
        // `key:` with nothing after it has an empty null scalar; point at the key.
        const value = resolve(pair.value);
        const empty = isScalar(value) && !!value.range && value.range[0] === value.range[1];
        const valuePos = empty ? undefined : pos(value);
        found = valuePos ?? pos(pair.key) ?? found;
        node = value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = resolve(node.items[seg]);
        if (item === undefined) return found;
        found = pos(item) ?? found;
        node = item;
      } else {
        return found;
      }
    }
    return found;
  };
}
