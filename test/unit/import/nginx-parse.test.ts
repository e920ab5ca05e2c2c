import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ImportError } from '../../../src/core/errors.js';
import { asWritten, parseNginx, tokenize, type Directive } from '../../../src/import/nginx-parse.js';

const SRC = { file: 'x.conf', ref: 'x.conf' };
const words = (text: string): string[] => tokenize(text, 'x.conf').map((t) => t.text);
const parseErr = (text: string): ImportError => {
  try {
    parseNginx(text, SRC);
  } catch (e) {
    assert.ok(e instanceof ImportError, String(e));
    return e;
  }
  assert.fail('expected an ImportError');
};

test('tokenize: words, punctuation and line numbers', () => {
  const toks = tokenize('user www-data;\nevents {\n  worker_connections 1024;\n}\n', 'x.conf');
  assert.deepEqual(toks.map((t) => [t.kind, t.text, t.line]), [
    ['word', 'user', 1], ['word', 'www-data', 1], [';', ';', 1],
    ['word', 'events', 2], ['{', '{', 2],
    ['word', 'worker_connections', 3], ['word', '1024', 3], [';', ';', 3],
    ['}', '}', 4],
  ]);
});

test('tokenize: single and double quotes group words; raw keeps them', () => {
  const toks = tokenize(`a "b c" 'd e' "";`, 'x.conf');
  assert.deepEqual(toks.map((t) => t.text), ['a', 'b c', 'd e', '', ';']);
  assert.deepEqual(toks.map((t) => t.quoted), [false, true, true, true, false]);
  assert.deepEqual(toks.map((t) => t.raw), ['a', '"b c"', "'d e'", '""', ';']);
  // ; { } # inside quotes are plain characters.
  assert.deepEqual(words(`x "a;b{c}d#e" 'f # g';`), ['x', 'a;b{c}d#e', 'f # g', ';']);
});

test('tokenize: backslash escapes as nginx unescapes them', () => {
  assert.deepEqual(words(String.raw`s "GET / HTTP/1.0\r\n\r\n";`), ['s', 'GET / HTTP/1.0\r\n\r\n', ';']);
  assert.deepEqual(words(String.raw`s "say \"hi\"" 'it\'s' "a\\b" "tab\there";`), ['s', 'say "hi"', "it's", 'a\\b', 'tab\there', ';']);
  // Other escapes stay as written (both characters), and an escaped ; does not end the word.
  assert.deepEqual(words(String.raw`s "\d+" a\;b;`), ['s', '\\d+', 'a\\;b', ';']);
});

test('tokenize: # comments at the start of a word only', () => {
  assert.deepEqual(words('a b; # comment ; { }\nc; # another'), ['a', 'b', ';', 'c', ';']);
  assert.deepEqual(words('a b#c;'), ['a', 'b#c', ';']);
  assert.deepEqual(words('a "#not a comment";'), ['a', '#not a comment', ';']);
  assert.deepEqual(words('a;#x\nb;'), ['a', ';', 'b', ';']);
});

test('tokenize: variables, ${braces} included', () => {
  assert.deepEqual(words('hash $remote_addr consistent;'), ['hash', '$remote_addr', 'consistent', ';']);
  assert.deepEqual(words('set ${a}b;'), ['set', '${a}b', ';']);
});

test('tokenize: a quoted word spanning lines counts its lines', () => {
  const toks = tokenize('a "x\ny";\nb;', 'x.conf');
  assert.equal(toks.find((t) => t.text === 'b')!.line, 3);
});

test('tokenize: unterminated quote is reported at the opening line', () => {
  assert.throws(() => tokenize('a;\nb "open\n\nc;\n', 'f.conf'), (e: Error) => e instanceof ImportError && e.message === 'f.conf:2: unterminated double quote (opened here, never closed)');
  assert.throws(() => tokenize("a 'x;", 'f.conf'), /^ImportError: f\.conf:1: unterminated single quote/);
});

test('tokenize: a closing quote must be followed by a blank, ; or {', () => {
  assert.throws(() => tokenize('a "b"c;', 'f.conf'), /f\.conf:1: unexpected "c" after a quoted string/);
  assert.deepEqual(words('a "b";'), ['a', 'b', ';']);
  assert.deepEqual(words('a "b"{ }'), ['a', 'b', '{', '}']);
});

test('parseNginx: nested blocks, args and lines', () => {
  const tree = parseNginx('tcp {\n  upstream u {\n    server a:1 weight=2;\n  }\n  server { listen 1; }\n}\n', SRC);
  assert.equal(tree.length, 1);
  const tcp = tree[0]!;
  assert.equal(tcp.name, 'tcp');
  assert.equal(tcp.line, 1);
  assert.equal(tcp.endLine, 6);
  const [up, srv] = tcp.block! as [Directive, Directive];
  assert.deepEqual([up.name, up.args, up.line, up.endLine], ['upstream', ['u'], 2, 4]);
  assert.deepEqual(up.block!.map((d) => [d.name, d.args, d.line]), [['server', ['a:1', 'weight=2'], 3]]);
  assert.equal(asWritten(srv), 'server { listen 1; }');
  assert.equal(asWritten(up.block![0]!), 'server a:1 weight=2;');
  assert.equal(asWritten(tcp), 'tcp { … }');
});

test('parseNginx: as written keeps quotes', () => {
  const [d] = parseNginx(String.raw`check_http_send "GET / HTTP/1.0\r\n\r\n";`, SRC);
  assert.equal(d!.args[0], 'GET / HTTP/1.0\r\n\r\n');
  assert.equal(asWritten(d!), String.raw`check_http_send "GET / HTTP/1.0\r\n\r\n";`);
});

test('parseNginx: a block never closed is reported where it opens', () => {
  // Indentation shows which block lacks its "}".
  const e = parseErr('tcp {\n    upstream u {\n        server a:1;\n\n    server { listen 1; }\n}\n');
  assert.equal(e.line, 2);
  assert.match(e.message, /^x\.conf:2: "upstream u \{" is never closed: missing "\}"/);
  // Without indentation to go by: the innermost open block.
  assert.equal(parseErr('tcp {\nserver {\nlisten 1;\n}\n').line, 1);
});

test('parseNginx: one "}" too many', () => {
  const e = parseErr('a;\n}\n');
  assert.equal(e.line, 2);
  assert.match(e.reason, /no block is open/);
});

test('parseNginx: a missing ";" is reported at the directive that lacks it', () => {
  assert.equal(parseErr('stream {\n  upstream u {\n    server a:1\n    server b:2;\n  }\n}\n').line, 3);
  const e = parseErr('stream {\n  server {\n    proxy_pass u\n  }\n}\n');
  assert.equal(e.line, 3);
  assert.match(e.reason, /missing ";" after "proxy_pass u" \(before "\}" at line 4\)/);
  assert.match(parseErr('worker_processes 1').message, /^x\.conf:1: missing ";" .*at end of file/);
  // Values on continuation lines are fine.
  assert.equal(parseNginx('hash $remote_addr\n    consistent;', SRC)[0]!.args.length, 2);
});

test('parseNginx: stray ; and {', () => {
  assert.equal(parseErr('a;\n;').line, 2);
  assert.match(parseErr('{ }').reason, /unexpected "\{"/);
});
