"""Reading a packetdrill script into events.

The language (google/packetdrill, lexer.l and parser.y): each event is a
time and an action. Times are absolute (`0.100`), relative (`+.1`), any
(`*`) or a range (`+0~+.04`); a blocking system call may give its end
(`+0...0.200 connect(...)`). Actions are system calls with a return value
(`= -1 ECONNREFUSED (Connection refused)`), packets (`<` injected, `>`
expected), shell commands in backticks and `%{ }%` Python code. Options
(`--tolerance_usecs=10000`) may open the script. Comments are `//` to the
end of the line and `/* ... */`.
"""
import re

ANY_TIME, ABSOLUTE_TIME, RELATIVE_TIME, ABSOLUTE_RANGE_TIME, RELATIVE_RANGE_TIME = range(5)
NO_TIME = None


class ParseError(Exception):
    """A script that does not parse: str() is `path:line: message`."""


class Event:
    """One line of the script: when, what, and where it was written."""

    __slots__ = ("line", "time_type", "time", "time_end", "kind", "body", "end_time",
                 "end_relative", "text", "abs_time", "abs_end", "abs_end_call", "offset")

    def __init__(self, line, time_type, time, time_end, kind, body, text):
        self.line = line
        self.time_type = time_type
        self.time = time                # usecs (relative ones: the increment)
        self.time_end = time_end        # range end, usecs
        self.kind = kind                # "syscall" | "packet" | "command" | "code"
        self.body = body
        self.end_time = None            # blocking call: `...END`, usecs
        self.end_relative = False
        self.text = text
        self.abs_time = 0               # script time once anchored (run.c)
        self.abs_end = None
        self.abs_end_call = None
        self.offset = 0

    def is_relative(self):
        return self.time_type in (RELATIVE_TIME, RELATIVE_RANGE_TIME, ANY_TIME)


class Syscall:
    __slots__ = ("name", "args", "result", "errno", "note")

    def __init__(self, name, args, result, errno_name, note):
        self.name = name
        self.args = args
        self.result = result
        self.errno = errno_name
        self.note = note


class Symbol(str):
    """A bare name in a system call (SOCK_STREAM, O_NONBLOCK)."""


class Call:
    """A function in an argument: htons(8080), inet_addr("192.0.2.1")."""

    __slots__ = ("name", "args")

    def __init__(self, name, args):
        self.name = name
        self.args = args


class Struct(dict):
    """{field=value, ...}; fields without names are numbered."""


class BitOr:
    __slots__ = ("terms",)

    def __init__(self, terms):
        self.terms = terms


def _usecs(text):
    return int(round(float(text) * 1e6))


_NUM = r"(?:\d+\.?\d*|\.\d+)"
_TIME_RE = re.compile(r"^(\*|([+-]?)(%s)(?:\s*~\s*([+-]?)(%s))?)(?=\s|$|\.\.\.)" % (_NUM, _NUM))
_OPTION_RE = re.compile(r"^--([A-Za-z_][A-Za-z0-9_]*)(?:=(\S+))?\s*$")


def strip_comments(text):
    """Blank out // and /* */ comments, keeping newlines (line numbers stay right)
    and leaving strings and backtick commands alone."""
    out = []
    i, n = 0, len(text)
    quote = None
    while i < n:
        c = text[i]
        if quote:
            out.append(c)
            if c == "\\" and quote == '"' and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "\"`":
            quote = c
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif text.startswith("%{", i):
            j = text.find("}%", i + 2)
            j = n if j < 0 else j + 2
            out.append(text[i:j])       # Python code: its # and // are its own
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _balanced(s):
    depth = 0
    quote = None
    for c in s:
        if quote:
            if c == quote:
                quote = None
        elif c == '"':
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
    return depth <= 0


def parse_script(text, path="script.pkt"):
    """(options, events) of a script; ParseError names the line."""
    lines = strip_comments(text).split("\n")
    options = []
    events = []
    i = 0
    seen_event = False
    while i < len(lines):
        lineno = i + 1
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        if not seen_event:
            m = _OPTION_RE.match(line)
            if m:
                options.append((m.group(1), m.group(2), lineno))
                continue
        seen_event = True
        m = _TIME_RE.match(line)
        if m:
            rest = line[m.end():].strip()
            ttype, t, tend = _parse_time(m)
        else:
            if line.startswith(("%{", "`")):
                rest, ttype, t, tend = line, RELATIVE_TIME, 0, None
            else:
                raise ParseError("%s:%d: syntax error: expected a time at the start of %r"
                                 % (path, lineno, line[:40]))
        if rest.startswith("%{"):
            body = rest
            while "}%" not in body and i < len(lines):
                body += "\n" + lines[i]
                i += 1
            if "}%" not in body:
                raise ParseError("%s:%d: syntax error: %%{ without }%%" % (path, lineno))
            code = body[2:body.index("}%")]
            events.append(Event(lineno, ttype, t, tend, "code", _dedent(code), rest))
            continue
        if rest.startswith("`"):
            body = rest
            while body.count("`") < 2 and i < len(lines):
                body += "\n" + lines[i]
                i += 1
            if body.count("`") < 2:
                raise ParseError("%s:%d: syntax error: unterminated command" % (path, lineno))
            events.append(Event(lineno, ttype, t, tend, "command", body[1:body.index("`", 1)],
                                rest))
            continue
        if rest[:1] in ("<", ">"):
            from .packet import parse_packet
            try:
                pkt = parse_packet(rest)
            except ValueError as e:
                raise ParseError("%s:%d: %s" % (path, lineno, e)) from None
            events.append(Event(lineno, ttype, t, tend, "packet", pkt, rest))
            continue
        end_time = None
        end_rel = False
        if rest.startswith("..."):
            m2 = re.match(r"^\.\.\.\s*([+]?)(%s)\s+" % _NUM, rest)
            if not m2:
                raise ParseError("%s:%d: syntax error in blocking end time" % (path, lineno))
            end_time = _usecs(m2.group(2))
            end_rel = m2.group(1) == "+"
            rest = rest[m2.end():]
        body = rest
        while not (_balanced(body) and "(" in body and re.search(r"\)\s*=", body)) \
                and i < len(lines):
            nxt = lines[i].strip()
            if _TIME_RE.match(nxt) and _balanced(body) and "=" in body:
                break
            body += " " + nxt
            i += 1
        try:
            sc = parse_syscall(body)
        except ValueError as e:
            raise ParseError("%s:%d: syntax error: %s" % (path, lineno, e)) from None
        ev = Event(lineno, ttype, t, tend, "syscall", sc, body)
        ev.end_time = end_time
        ev.end_relative = end_rel
        events.append(ev)
    return options, events


def _dedent(code):
    import textwrap
    lines = code.split("\n")
    first = lines[0].strip()
    rest = textwrap.dedent("\n".join(lines[1:]))
    return (first + "\n" + rest).strip() + "\n"


def _parse_time(m):
    if m.group(1) == "*":
        return ANY_TIME, 0, None
    sign, num, num2 = m.group(2), m.group(3), m.group(5)
    t = _usecs(num) * (-1 if sign == "-" else 1)
    if num2 is not None:
        tend = _usecs(num2)
        if sign == "+":
            return RELATIVE_RANGE_TIME, t, tend
        return ABSOLUTE_RANGE_TIME, t, tend
    return (RELATIVE_TIME if sign == "+" else ABSOLUTE_TIME), t, None


# ---------------------------------------------------------------- system calls

_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<ellipsis>\.\.\.)
  | (?P<num>-?0x[0-9a-fA-F]+|-?\d+\.\d+|-?\d+)
  | (?P<str>"(?:[^"\\]|\\.)*")
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[()\[\]{},=|])
""", re.X)


def _tokens(s):
    out = []
    pos = 0
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if not m:
            raise ValueError("unexpected %r" % s[pos:pos + 10])
        pos = m.end()
        kind = m.lastgroup
        if kind == "ws":
            continue
        out.append((kind, m.group(kind)))
    return out


class _Toks:
    def __init__(self, toks):
        self.toks = toks
        self.i = 0

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else (None, None)

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def expect(self, value):
        t = self.next()
        if t[1] != value:
            raise ValueError("expected %r, got %r" % (value, t[1]))


def _expr(ts):
    terms = [_term(ts)]
    while ts.peek()[1] == "|":
        ts.next()
        terms.append(_term(ts))
    return terms[0] if len(terms) == 1 else BitOr(terms)


def _term(ts):
    kind, val = ts.next()
    if kind == "num":
        return int(val, 16) if "x" in val.lower() else (float(val) if "." in val else int(val))
    if kind == "ellipsis":
        return Ellipsis
    if kind == "str":
        return bytes(val[1:-1], "latin-1").decode("unicode_escape").encode("latin-1")
    if kind == "name":
        if ts.peek()[1] == "(":
            ts.next()
            args = _list(ts, ")")
            return Call(val, args)
        return Symbol(val)
    if val == "[":
        return _list(ts, "]")
    if val == "{":
        st = Struct()
        n = 0
        while ts.peek()[1] != "}":
            if ts.peek()[0] == "name" and ts.toks[ts.i + 1:ts.i + 2] and \
                    ts.toks[ts.i + 1][1] == "=":
                name = ts.next()[1]
                ts.next()
                st[name] = _expr(ts)
            else:
                st[n] = _expr(ts)
                n += 1
            if ts.peek()[1] == ",":
                ts.next()
            elif ts.peek()[1] != "}":
                raise ValueError("expected , or } in a struct")
        ts.next()
        return st
    raise ValueError("unexpected %r" % (val,))


def _list(ts, close):
    items = []
    while ts.peek()[1] != close:
        if ts.peek()[0] is None:
            raise ValueError("missing %r" % close)
        items.append(_expr(ts))
        if ts.peek()[1] == ",":
            ts.next()
        elif ts.peek()[1] != close:
            raise ValueError("expected , or %s" % close)
    ts.next()
    return items


def parse_syscall(text):
    """name(args) = result [ERRNO [(note)]]."""
    m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\(", text)
    if not m:
        raise ValueError("expected a system call, got %r" % text[:40])
    name = m.group(1)
    # Split off the result: the first '=' after the balanced argument list.
    depth = 0
    quote = False
    end = None
    for j in range(m.end() - 1, len(text)):
        c = text[j]
        if c == '"':
            quote = not quote
        elif quote:
            continue
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                end = j
                break
    if end is None:
        raise ValueError("unbalanced parentheses in %s()" % name)
    ts = _Toks(_tokens(text[m.end():end]))
    args = []
    while ts.peek()[0] is not None:
        args.append(_expr(ts))
        if ts.peek()[1] == ",":
            ts.next()
        elif ts.peek()[0] is not None:
            raise ValueError("expected , between arguments of %s()" % name)
    tail = text[end + 1:].strip()
    mr = re.match(r"^=\s*(-?0x[0-9a-fA-F]+|-?\d+|\.\.\.)\s*([A-Z][A-Z0-9_]*)?\s*(\(.*\))?\s*$", tail)
    if not mr:
        raise ValueError("expected '= RESULT' after %s(), got %r" % (name, tail[:40]))
    r = mr.group(1)
    result = Ellipsis if r == "..." else int(r, 0)
    note = mr.group(3)[1:-1] if mr.group(3) else None
    return Syscall(name, args, result, mr.group(2), note)
