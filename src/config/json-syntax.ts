// JSON syntax (RFC 8259) checked as JSON, with the offset of the first error. Config files in
// JSON are then read by the yaml parser for positions (YAML 1.2 is a superset of JSON), which
// would also take what JSON forbids: trailing commas, comments, single quotes, bare words.
// JSON.parse would catch those, but its messages (and whether they carry an offset) change
// between V8 versions; this scanner gives the same answer on every Node.

export interface JsonSyntaxError {
  /** Offset in the text (UTF-16 units, as the yaml LineCounter counts). */
  offset: number;
  message: string;
}

class Fail extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPE = /["\\/bfnrt]|u[0-9a-fA-F]{4}/y;

/** The first syntax error of `text` as JSON, or undefined when it is JSON. A leading BOM is allowed. */
export function jsonSyntaxError(text: string): JsonSyntaxError | undefined {
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const ws = () => {
    while (i < text.length && WS.has(text.charCodeAt(i))) i++;
    if (text.startsWith('//', i) || text.startsWith('/*', i)) throw new Fail(i, 'comments are not allowed in JSON');
  };
  const describe = () => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]));
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') return container('}', true);
    if (c === '[') return container(']', false);
    if (c === '"') return string();
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return;
      }
    }
    NUMBER.lastIndex = i;
    if (NUMBER.exec(text) !== null) {
      i = NUMBER.lastIndex;
      return;
    }
    if (c === "'") throw new Fail(i, 'strings in JSON take double quotes');
    throw new Fail(i, `expected a value, found ${describe()}`);
  };
  const string = (): void => {
    const start = i++;
    for (;;) {
      if (i >= text.length) throw new Fail(start, 'this string has no closing quote');
      const code = text.charCodeAt(i);
      if (code === 0x22) {
        i++;
        return;
      }
      if (code < 0x20) throw new Fail(i, 'a control character (such as a line break) inside a string must be escaped');
      if (code === 0x5c) {
        ESCAPE.lastIndex = i + 1;
        if (ESCAPE.exec(text) === null) throw new Fail(i, 'invalid escape in a string (\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX)');
        i = ESCAPE.lastIndex;
        continue;
      }
      i++;
    }
  };
  const container = (close: '}' | ']', object: boolean): void => {
    i++;
    ws();
    if (text[i] === close) {
      i++;
      return;
    }
    for (;;) {
      if (object) {
        ws();
        if (text[i] !== '"') throw new Fail(i, `expected a key in double quotes, found ${describe()}`);
        string();
        ws();
        if (text[i] !== ':') throw new Fail(i, `expected ":" after the key, found ${describe()}`);
        i++;
      }
      value();
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      if (text[i] !== ',') throw new Fail(i, `expected "," or "${close}", found ${describe()}`);
      const comma = i++;
      ws();
      if (text[i] === close) throw new Fail(comma, `a trailing comma before "${close}" is not allowed in JSON`);
    }
  };
  try {
    value();
    ws();
    if (i < text.length) throw new Fail(i, `unexpected ${describe()} after the end of the document`);
    return undefined;
  } catch (e) {
    if (e instanceof Fail) return { offset: e.offset, message: e.message };
    throw e;
  }
}
