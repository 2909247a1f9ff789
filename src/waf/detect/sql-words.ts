// The SQL words the SQLi tokenizer (sqli.ts) knows, by the token type it gives them. Written
// here from the SQL dialects' own grammars (MySQL, PostgreSQL, SQL Server, Oracle, SQLite) for
// what an injection uses; a word not listed is a bareword (`n`). Looked up without allocating:
// a case-folded hash of the word's characters, then a character-by-character check.

/** Token types; the character is what the fingerprint shows. */
export const enum T {
  STRING = 0x73, // s
  NUMBER = 0x31, // 1
  BAREWORD = 0x6e, // n
  KEYWORD = 0x6b, // k: FROM, WHERE, INTO, TABLE, ...
  STATEMENT = 0x45, // E: SELECT, DROP, EXEC, ... (a word that starts a statement)
  UNION = 0x55, // U: UNION, INTERSECT, EXCEPT
  GROUP = 0x42, // B: ORDER BY, GROUP BY, HAVING, LIMIT (clauses that follow a value)
  LOGIC = 0x26, // &: AND, OR, &&, ||
  OPERATOR = 0x6f, // o: = < > + - LIKE IN IS ...
  FUNCTION = 0x66, // f: a known function name directly followed by "("
  VARIABLE = 0x76, // v: @x, @@version
  COMMENT = 0x63, // c
  LPAREN = 0x28, // (
  RPAREN = 0x29, // )
  COMMA = 0x2c, // ,
  SEMICOLON = 0x3b, // ;
  EVIL = 0x58, // X: a MySQL executable comment (/*! ... */), never in ordinary text
}

/** Word flags beside the type (const enums: inlined as numbers, so a switch on them is a jump table). */
export const enum W {
  FUNCTION = 0x100, // a function when "(" follows at once, else a bareword
  VALUE = 0x200, // TRUE, FALSE, NULL: a constant, typed as a number
  BY = 0x400, // ORDER, GROUP: a GROUP clause when BY follows
  BYWORD = 0x800, // BY
  ALL = 0x1000, // ALL, DISTINCT: folded into a UNION before them
  DELAY = 0x2000, // DELAY, TIME: folded into WAITFOR
  UNARY = 0x4000, // NOT: an operator that may stand before a value
  COMPARE = 0x8000, // LIKE, IN, IS, ...: a comparison word
}

const STATEMENTS = 'select insert update delete drop create alter truncate exec execute declare waitfor shutdown grant revoke rename handler call merge replace load';
const KEYWORDS = 'from where into table values set as on join inner outer cross natural using case when then else end distinct all top procedure database schema column exists outfile dumpfile infile delay time by order group asc desc offset fetch rows only escape collate';
const GROUPS = 'having limit';
const LOGIC = 'and or xor';
// Not MATCH/AGAINST: "match" is an ordinary word and a JSON key far more often than full-text SQL.
const OPERATORS = 'like rlike ilike regexp similar between is in not sounds glob';
const VALUES = 'true false null';
const FUNCTIONS = `sleep benchmark pg_sleep char chr nchar concat concat_ws group_concat substring substr mid ascii ord hex
unhex version database user current_user system_user session_user schema load_file extractvalue updatexml floor rand count
cast convert if ifnull isnull nullif coalesce length len char_length lower upper md5 sha1 sha2 exp name_const row exists elt
make_set json_keys json_extract sysdate now current_database pg_read_file db_name bin conv strcmp regexp_like
regexp_substr instr locate position reverse left right trim least greatest abs polygon multipoint geometrycollection
linestring multilinestring multipolygon gtid_subset randomblob unicode xmltype dbms_pipe.receive_message
utl_inaddr.get_host_name utl_http.request ctxsys.drithsx.sn dbms_lock.sleep sys.fn_sqlvarbasetostr quotename
openrowset opendatasource xp_cmdshell sp_executesql pg_sleep_for to_char decode encode iif choose sqlite_version
typeof hex_to_raw soundex space repeat lpad rpad format`;

// An open-addressing table in typed arrays (a Map keyed by the hash cost 11% of a call in a
// profile): slot -> entry index + 1, probed linearly; an entry's hash, word and info beside it.
const SLOTS = 2048;
const slots = new Int32Array(SLOTS);
const hashes: number[] = [];
const words: string[] = [];
const infos: number[] = [];
let longest = 0;

/**
 * The case-folded hash of s[start, end): ASCII letters fold to lower case. Kept to 30 bits so
 * that it stays a small integer (a Smi) and the Map lookup allocates nothing.
 */
export function wordHash(s: string, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h & 0x3fffffff;
}

function add(list: string, info: number): void {
  for (const word of list.split(/\s+/)) {
    if (word === '') continue;
    const h = wordHash(word, 0, word.length);
    const prev = words.indexOf(word);
    if (prev >= 0) {
      infos[prev]! |= info & 0xff00; // a second list adds flags, the first type stays
      continue;
    }
    let slot = h & (SLOTS - 1);
    while (slots[slot] !== 0) slot = (slot + 1) & (SLOTS - 1);
    words.push(word);
    hashes.push(h);
    infos.push(info);
    slots[slot] = words.length;
    if (word.length > longest) longest = word.length;
  }
}

add(STATEMENTS, T.STATEMENT);
add(KEYWORDS, T.KEYWORD);
add(GROUPS, T.GROUP);
add(LOGIC, T.LOGIC);
add(OPERATORS, T.OPERATOR | W.COMPARE);
add('div mod', T.OPERATOR);
add(VALUES, T.NUMBER | W.VALUE);
add('order group', T.KEYWORD | W.BY);
add('by', T.KEYWORD | W.BYWORD);
add('all distinct', T.KEYWORD | W.ALL);
add('delay time', T.KEYWORD | W.DELAY);
add('not', T.OPERATOR | W.UNARY);
add('union intersect except', T.UNION);
// Functions last: a word that is also a keyword (IF, LEFT, SCHEMA, EXISTS, DATABASE) keeps its
// keyword type and gains the flag, so "if(" is a function and "schema" alone a keyword.
add(FUNCTIONS, T.BAREWORD | W.FUNCTION);

/** The type and flags of s[start, end), compared without case, or 0 for a bareword. */
export function lookupWord(s: string, start: number, end: number): number {
  const n = end - start;
  if (n > longest) return 0;
  const h = wordHash(s, start, end);
  for (let slot = h & (SLOTS - 1); ; slot = (slot + 1) & (SLOTS - 1)) {
    const e = slots[slot]! - 1;
    if (e < 0) return 0;
    if (hashes[e] !== h) continue;
    const word = words[e]!;
    if (word.length !== n) continue;
    let same = true;
    for (let i = 0; i < n && same; i++) {
      let c = s.charCodeAt(start + i);
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      same = c === word.charCodeAt(i);
    }
    if (same) return infos[e]!;
  }
}
