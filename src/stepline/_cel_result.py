"""Whether a CEL expression can yield a boolean, read from its outermost operation.

The CEL library has no type checker for undeclared variables, yet a condition such as
`event.data.total + 1` can never be true or false, and would silently match nothing forever.
This reads the (already compiled, so well-formed) source's outermost operation: comparisons,
`&&`, `||`, `!` and predicates such as `has()` yield booleans; arithmetic, literals other than
`true`/`false` and conversions such as `size()` never do; field access may, so it passes.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""\s*(?P<token>
      [rRbB]{0,2}(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\])*'|"(?:\\.|[^"\\])*")
    | 0[xX][0-9a-fA-F]+[uU]? | (?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[uU]?
    | [A-Za-z_][A-Za-z0-9_]*
    | &&|\|\||==|!=|<=|>=|[-+*/%<>!?:.,()\[\]{}]
    )""",
    re.VERBOSE | re.DOTALL,
)
_OPEN, _CLOSE = "([{", ")]}"
_RELATIONS = {"==", "!=", "<", "<=", ">", ">=", "in"}
_ARITHMETIC = {"+", "-", "*", "/", "%"}
_BOOLEAN_CALLS = {"has", "startsWith", "endsWith", "contains", "matches", "exists", "all", "bool"}
_OTHER_CALLS = {
    "size", "int", "uint", "double", "string", "bytes", "duration", "timestamp", "type", "dyn",
    "map", "filter", "lowerAscii", "upperAscii", "replace", "split", "join", "substring", "trim",
    "charAt", "indexOf", "lastIndexOf", "format", "getFullYear", "getMonth", "getDayOfMonth",
    "getDayOfWeek", "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
}  # fmt: skip


def non_boolean_reason(source: str) -> str | None:
    """Why `source` can never yield a boolean, or None if it may (or the reading is unsure)."""
    tokens = [m.group("token") for m in _TOKEN.finditer(source)]
    return _reason(tokens) if tokens else None


def _reason(tokens: list[str]) -> str | None:
    depth_zero = _top_level(tokens)
    if "?" in depth_zero.values():
        return _ternary_reason(tokens, depth_zero)
    operators = set(depth_zero.values())
    if operators & ({"&&", "||"} | _RELATIONS):
        return None
    for index, token in depth_zero.items():
        if token in _ARITHMETIC and index > 0 and _is_operand_end(tokens[index - 1]):
            return f"its outermost operation is '{token}'"
    return _unary_reason(tokens)


def _ternary_reason(tokens: list[str], depth_zero: dict[int, str]) -> str | None:
    question = next(i for i, t in depth_zero.items() if t == "?")
    nested = 0
    for index in sorted(i for i in depth_zero if i > question):
        if depth_zero[index] == "?":
            nested += 1
        elif depth_zero[index] == ":":
            if nested == 0:
                both = (_reason(tokens[question + 1 : index]), _reason(tokens[index + 1 :]))
                return both[0] and both[1] and "neither branch of its '?:' does"
            nested -= 1
    return None


def _unary_reason(tokens: list[str]) -> str | None:
    first, last = tokens[0], tokens[-1]
    if first == "!":
        return None
    if first == "-":
        return "it is a negated number"
    if len(tokens) == 1:
        return _literal_reason(first)
    if first == "(" and _closing(tokens, 0) == len(tokens) - 1:
        return _reason(tokens[1:-1])
    if first in "[{" and _closing(tokens, 0) == len(tokens) - 1:
        return "it is a list or map literal"
    if last == ")":
        name = tokens[_opening(tokens, len(tokens) - 1) - 1]
        if name in _OTHER_CALLS:
            return f"it is the result of {name}()"
    return None


def _literal_reason(literal: str) -> str | None:
    is_name = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", literal) is not None
    if is_name and literal != "null":
        return None  # true, false, or a variable that may hold a boolean
    return f"it is the literal {literal}"


def _is_operand_end(token: str) -> bool:
    return token in _CLOSE or token not in _ARITHMETIC | _RELATIONS | set("!?:.,([{&|<>=")


def _top_level(tokens: list[str]) -> dict[int, str]:
    """The operator tokens outside any brackets, by position."""
    found: dict[int, str] = {}
    depth = 0
    for index, token in enumerate(tokens):
        if token in _OPEN:
            depth += 1
        elif token in _CLOSE:
            depth -= 1
        elif depth == 0 and (token in _RELATIONS | _ARITHMETIC or token in ("&&", "||", "?", ":")):
            found[index] = token
    return found


def _closing(tokens: list[str], start: int) -> int:
    depth = 0
    for index in range(start, len(tokens)):
        depth += tokens[index] in _OPEN
        depth -= tokens[index] in _CLOSE
        if depth == 0:
            return index
    return -1


def _opening(tokens: list[str], end: int) -> int:
    depth = 0
    for index in range(end, -1, -1):
        depth += tokens[index] in _CLOSE
        depth -= tokens[index] in _OPEN
        if depth == 0:
            return index
    return 0


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MACROS = {"all", "exists", "exists_one", "map", "filter"}
_NOT_VARIABLES = {
    "true", "false", "null", "in",
    "int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "dyn",
}  # fmt: skip


def unknown_variables(source: str, known: tuple[str, ...]) -> list[str]:
    """The top-level names in `source` that are not among `known` (nor a macro's own variable).

    `data.customer` instead of `event.data.customer` is the mistake this catches: the library
    accepts it, and every evaluation then fails for want of a variable `data`.
    """
    tokens = [m.group("token") for m in _TOKEN.finditer(source)]
    bound = {
        tokens[i + 2]
        for i, token in enumerate(tokens[:-2])
        if token in _MACROS and i > 0 and tokens[i - 1] == "." and tokens[i + 1] == "("
    }
    unknown: list[str] = []
    for i, token in enumerate(tokens):
        if not _NAME.fullmatch(token) or token in _NOT_VARIABLES | bound or token in known:
            continue
        if (i > 0 and tokens[i - 1] == ".") or (i + 1 < len(tokens) and tokens[i + 1] == "("):
            continue  # a field, a method or a function
        if token not in unknown:
            unknown.append(token)
    return unknown
