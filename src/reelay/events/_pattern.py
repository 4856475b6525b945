"""EventBridge event patterns: validate them once, match them against events fast.

A pattern is a JSON object with the shape of the events it selects. Every leaf of the
pattern is an array of allowed values; a field matches when *any* of them matches, and
an event matches when *every* field of the pattern does. This is the language of
Amazon EventBridge rules (and of Lambda, SNS and Pipes filters), and reelay follows
AWS's semantics, as documented in the EventBridge user guide ("Creating event
patterns", "Content filtering", "Comparison operators", "Arrays", "Null values and
empty strings") and as implemented by AWS's open-source matcher, aws/event-ruler:

``"f": ["a", 1, true, null]``
    Exact values. Strings, numbers, booleans and ``null`` are distinct types: ``"1"``
    never matches ``1``, ``""`` never matches ``null``, ``true`` never matches ``1``.
    Numbers compare by value (``300`` matches ``3.0e2``). A string that is an IP
    address matches the same address written another way.
``{"prefix": "s"}``, ``{"suffix": "s"}``, ``{"equals-ignore-case": "s"}``
    String tests; ``prefix`` and ``suffix`` also take ``{"equals-ignore-case": "s"}``.
``{"wildcard": "a*b"}``
    ``*`` matches any run of characters, ``\\*`` a literal star and ``\\\\`` a
    backslash; two ``*`` in a row are invalid. Wildcards that are too complex are
    invalid, as EventBridge rejects them ("Rule is too complex"): the wildcard tests of
    one field may not let more than `WILDCARD_COMPLEXITY_LIMIT` (10) wildcard prefixes
    match one value at once, counted as AWS's matcher counts them (see
    `_check_complexity`).
``{"anything-but": ...}``
    A string, a number, or an array of only strings or only numbers; or an object with
    one of ``prefix``, ``suffix``, ``equals-ignore-case``, ``wildcard`` (each taking a
    string or an array of strings). Matches every *present* value the inner test
    rejects, including values of other types such as ``null`` or numbers.
``{"numeric": [">", 0, "<=", 5]}``
    ``=``, or one or two comparisons, a lower bound (``>``, ``>=``) before an upper one
    (``<``, ``<=``). Matches JSON numbers only, between -5e9 and 5e9 inclusive (AWS's
    documented limit: larger event values never satisfy a numeric test).
``{"cidr": "10.0.0.0/24"}``
    IPv4 or IPv6 network; matches strings holding an address inside it.
``{"exists": true|false}``
    Whether the field holds a *leaf* value. ``null`` is a leaf; an object is not, and
    an array counts only through its leaf elements, so ``[]`` does not exist.
``"$or": [{...}, {...}]``
    At any level, two or more sub-patterns, any of which may match.

A field name with dots names the nested field it spells, in the pattern and in the
event, because EventBridge joins nested names with dots when it compiles a pattern:
``{"a.b": [1]}`` is ``{"a": {"b": [1]}}``, and both match ``{"a.b": 1}`` and
``{"a": {"b": 1}}``. Where an event names one field both ways, the field has both
values.

Event arrays are "crushed": a field whose event value is an array matches when any
element does, nested arrays are flattened, and an array of objects matches a nested
pattern when one element matches the whole nested pattern (AWS's array-consistent
matching; a nested pattern made only of ``exists: false`` tests must hold in every
element, as the field must be absent from all of them).

What is invalid follows AWS: a leaf that is not an array, an empty array, an empty
nested object, an operator object with zero or several keys, an unknown operator,
malformed operator values, ``$or`` that is not an array of at least two non-empty
objects, and operator names used as field names inside ``$or``.
`InvalidPatternError` names the path of the offending key and the valid choices.

Where reelay deliberately differs from AWS:

* the empty pattern ``{}`` is valid and matches every event (AWS rejects it);
* a key constrained both outside and inside an ``$or`` branch must satisfy both (AWS
  keeps only the last one written);
* numbers compare exactly, where AWS rounds to six decimal places.

`compile_pattern` validates a pattern completely and returns an immutable `Pattern`
whose `Pattern.matches` does no parsing work. `PatternIndex` holds many patterns and
finds those matching one event without testing every pattern.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, Final, Generic, TypeVar

from reelay.errors import InvalidPatternError

__all__ = ["OPERATORS", "Pattern", "PatternIndex", "compile_pattern", "matches"]

#: The comparison operators a pattern value object may use.
OPERATORS: Final = (
    "anything-but",
    "cidr",
    "equals-ignore-case",
    "exists",
    "numeric",
    "prefix",
    "suffix",
    "wildcard",
)
_VALID_OPERATORS = ", ".join(OPERATORS)
_ANYTHING_BUT_OPTIONS = ("equals-ignore-case", "prefix", "suffix", "wildcard")
_NUMERIC_OPERATORS = ("<", "<=", "=", ">", ">=")
# Names AWS reserves inside "$or" objects, so that an operator object misplaced there
# is reported instead of being read as a field (aws/event-ruler, Constants.java).
_RESERVED_IN_OR: Final = frozenset(
    {
        *OPERATORS,
        "exactly",
        *_NUMERIC_OPERATORS,
        "regex",
        "not-wildcard",
        "not-equals-ignore-case",
        "date-after",
        "date-on-or-after",
        "date-before",
        "date-on-or-before",
        "in-date-range",
        "ip-address-in-range",
        "ip-address-not-in-range",
    }
)
#: Numeric matching works between these bounds, inclusive (EventBridge content filtering).
NUMERIC_LIMIT: Final = 5e9
# "$or" multiplies branches; a pattern needing more than this many is refused rather
# than compiled into something slow.
_MAX_BRANCHES: Final = 1024

_MISSING: Final[Any] = object()  # the value of a field the event does not have
_EMPTY: Final[Mapping[str, Any]] = {}  # what a non-object stands for under a nested pattern

_Test = Callable[[Any], bool]


# ---------------------------------------------------------------------------------------
# Event value helpers


def _is_object(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _is_array(value: Any) -> bool:
    return type(value) is list or isinstance(value, tuple)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _flatten(array: list[Any] | tuple[Any, ...]) -> Iterator[Any]:
    """Yield the elements of an event array, nested arrays crushed into it."""
    for item in array:
        if _is_array(item):
            yield from _flatten(item)
        else:
            yield item


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# Compiled matchers


class _Leaf:
    """The array of allowed values at one leaf of a pattern."""

    __slots__ = ("_absent", "_bools", "_exists", "_null", "_numbers", "_strings", "_tests")

    def __init__(
        self,
        strings: frozenset[str],
        numbers: frozenset[int | float],
        bools: frozenset[bool],
        null: bool,
        exists: bool,
        absent: bool,
        tests: tuple[_Test, ...],
    ) -> None:
        self._strings = strings
        self._numbers = numbers
        self._bools = bools
        self._null = null
        self._exists = exists  # {"exists": true}: any leaf value will do
        self._absent = absent  # {"exists": false}: matches when there is no leaf value
        self._tests = tests

    @property
    def absence_only(self) -> bool:
        """Whether this leaf is nothing but ``{"exists": false}``."""
        return self._absent and not (
            self._strings
            or self._numbers
            or self._bools
            or self._null
            or self._exists
            or self._tests
        )

    def matches(self, value: Any) -> bool:
        if value is _MISSING or _is_object(value):
            return self._absent
        if _is_array(value):
            present = False
            for item in _flatten(value):
                if _is_object(item):
                    continue  # an object is not a leaf value
                if self._test(item):
                    return True
                present = True
            return self._absent and not present
        return self._test(value)

    def _test(self, value: Any) -> bool:
        if self._exists:
            return True
        if isinstance(value, str):
            if value in self._strings:
                return True
        elif value is None:
            if self._null:
                return True
        elif isinstance(value, bool):
            if value in self._bools:
                return True
        elif isinstance(value, (int, float)) and value in self._numbers:
            return True
        return any(test(value) for test in self._tests)


class _Node:
    """A nested object of a pattern: every field must match."""

    __slots__ = ("_absence_only", "_fields")

    def __init__(self, fields: tuple[tuple[str, _Leaf | _Node], ...]) -> None:
        self._fields = fields
        self._absence_only = bool(fields) and all(m.absence_only for _, m in fields)

    @property
    def absence_only(self) -> bool:
        """Whether every leaf below is ``{"exists": false}`` alone."""
        return self._absence_only

    def matches(self, value: Any) -> bool:
        if _is_object(value):
            return self._match_object(value)
        if _is_array(value):
            items = [item if _is_object(item) else _EMPTY for item in _flatten(value)]
            if not items:
                return self._match_object(_EMPTY)
            if self._absence_only:
                # The fields must be absent from the event, so from every element.
                return all(self._match_object(item) for item in items)
            # Array consistency: one element must satisfy the whole nested pattern.
            return any(self._match_object(item) for item in items)
        return self._match_object(_EMPTY)

    def _match_object(self, obj: Mapping[str, Any]) -> bool:
        # A plain loop: this is the hot path, and all(<genexpr>) costs a generator.
        for key, matcher in self._fields:  # noqa: SIM110
            if not matcher.matches(obj.get(key, _MISSING)):
                return False
        return True


# ---------------------------------------------------------------------------------------
# Compilation: validate and build


def _where(path: str) -> str:
    return f"pattern key {path!r}"


def _fail(path: str, problem: str) -> InvalidPatternError:
    return InvalidPatternError(f"{_where(path)}: {problem}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: Any) -> str:
    """Name a JSON value and its type for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {json.dumps(value)}"
    if _is_number(value):
        return f"the number {value!r}"
    if _is_array(value):
        return "an array" if value else "an empty array"
    if _is_object(value):
        return "an object" if value else "an empty object"
    return f"{type(value).__name__} {value!r} (not a JSON value)"


def _check_number(value: Any, path: str, what: str) -> None:
    # Only a float can be infinite or NaN (and math.isfinite overflows on huge ints).
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(path, f"{what}: {value!r} is not a finite number")


def _check_numeric_limit(value: int | float, path: str, what: str) -> None:
    _check_number(value, path, what)
    if not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:
        raise _fail(
            path,
            f"{what}: {value!r} is out of range; numbers must be between -5e9 and 5e9",
        )


class _LeafBuilder:
    """Collects the allowed values of one pattern leaf while validating them."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.strings: set[str] = set()
        self.numbers: set[int | float] = set()
        self.bools: set[bool] = set()
        self.null = False
        self.exists = False
        self.absent = False
        self.tests: list[_Test] = []
        # Whether every value is a plain exact string, which lets PatternIndex look
        # the leaf up in a dict; an IP address is not plain, it matches other spellings.
        self.plain_strings = True

    def build(self) -> _Leaf:
        return _Leaf(
            frozenset(self.strings),
            frozenset(self.numbers),
            frozenset(self.bools),
            self.null,
            self.exists,
            self.absent,
            tuple(self.tests),
        )

    def add(self, value: Any) -> None:
        if isinstance(value, str):
            self.strings.add(value)
            address = _ip(value)
            if address is not None:
                self.tests.append(_same_ip(address))
                self.plain_strings = False
            return
        self.plain_strings = False
        if value is None:
            self.null = True
        elif isinstance(value, bool):
            self.bools.add(value)
        elif _is_number(value):
            _check_number(value, self.path, "value")
            self.numbers.add(value)
        elif _is_object(value):
            self._add_operator(value)
        else:
            raise _fail(
                self.path,
                "the values in a pattern array must be strings, numbers, true, false, null "
                f'or operator objects such as {{"prefix": "abc"}}, got {_describe(value)}',
            )

    def _add_operator(self, expression: Mapping[Any, Any]) -> None:
        if len(expression) != 1:
            names = ", ".join(repr(str(k)) for k in expression)
            got = f"{len(expression)} ({names})" if expression else "none"
            raise _fail(
                self.path,
                f"an operator object takes exactly one operator, got {got}; "
                f"valid operators: {_VALID_OPERATORS}",
            )
        ((name, argument),) = expression.items()
        if name == "exists":
            if not isinstance(argument, bool):
                raise _fail(self.path, f"exists must be true or false, got {_describe(argument)}")
            if argument:
                self.exists = True
            else:
                self.absent = True
        elif name == "prefix":
            self.tests.append(_affix_test(argument, self.path, "prefix", str.startswith))
        elif name == "suffix":
            self.tests.append(_affix_test(argument, self.path, "suffix", str.endswith))
        elif name == "equals-ignore-case":
            if not isinstance(argument, str):
                raise _fail(
                    self.path,
                    f"equals-ignore-case must be a string, got {_describe(argument)}",
                )
            self.tests.append(_ignore_case_test(argument))
        elif name == "wildcard":
            self.tests.append(_string_test(_wildcard(argument, self.path, "wildcard")))
        elif name == "numeric":
            self.tests.append(_numeric_test(argument, self.path))
        elif name == "cidr":
            self.tests.append(_cidr_test(argument, self.path))
        elif name == "anything-but":
            self.tests.append(_anything_but_test(argument, self.path))
        else:
            raise _fail(
                self.path,
                f"unknown operator {str(name)!r}; valid operators: {_VALID_OPERATORS}",
            )


def _same_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> _Test:
    def test(value: Any) -> bool:
        return isinstance(value, str) and _ip(value) == address

    return test


def _string_test(predicate: Callable[[str], bool]) -> _Test:
    def test(value: Any) -> bool:
        return isinstance(value, str) and predicate(value)

    return test


def _ignore_case_test(text: str) -> _Test:
    folded = text.lower()

    def test(value: Any) -> bool:
        return isinstance(value, str) and value.lower() == folded

    return test


def _affix_test(argument: Any, path: str, name: str, method: Callable[[str, str], bool]) -> _Test:
    """``prefix`` or ``suffix``: a string, or ``{"equals-ignore-case": string}``."""
    if isinstance(argument, str):
        text = argument

        def exact(value: Any) -> bool:
            return isinstance(value, str) and method(value, text)

        return exact
    if _is_object(argument) and list(argument) == ["equals-ignore-case"]:
        inner = argument["equals-ignore-case"]
        if not isinstance(inner, str):
            raise _fail(
                path,
                f"{name}: equals-ignore-case must be a string, got {_describe(inner)}",
            )
        folded = inner.lower()

        def ignore_case(value: Any) -> bool:
            return isinstance(value, str) and method(value.lower(), folded)

        return ignore_case
    if _is_object(argument):
        options = ", ".join(repr(str(k)) for k in argument) or "none"
        raise _fail(
            path,
            f"{name} takes a string or an object with the single option "
            f"equals-ignore-case, got options {options}",
        )
    raise _fail(
        path,
        f'{name} must be a string or {{"equals-ignore-case": string}}, got {_describe(argument)}',
    )


def _wildcard(text: Any, path: str, what: str) -> Callable[[str], bool]:
    """Compile a wildcard string into a linear-time matcher."""
    if not isinstance(text, str):
        raise _fail(path, f"{what} must be a string, got {_describe(text)}")
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            following = text[i + 1 : i + 2]
            if following not in ("*", "\\"):
                raise _fail(
                    path,
                    f"{what} {json.dumps(text)}: a backslash at position {i + 1} may only "
                    "escape '*' or '\\'",
                )
            current.append(following)
            i += 2
            continue
        if char == "*":
            if text[i + 1 : i + 2] == "*":
                raise _fail(
                    path,
                    f"{what} {json.dumps(text)}: consecutive '*' at position {i + 1} "
                    "are not allowed",
                )
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    segments.append("".join(current))

    if len(segments) == 1:
        literal = segments[0]
        return literal.__eq__
    head, middle, tail = segments[0], tuple(segments[1:-1]), segments[-1]
    shortest = sum(map(len, segments))

    def match(value: str) -> bool:
        if len(value) < shortest or not value.startswith(head) or not value.endswith(tail):
            return False
        # Leftmost placement of each middle segment leaves the most room for the
        # rest, so a greedy scan decides the match without backtracking.
        position, end = len(head), len(value) - len(tail)
        for segment in middle:
            found = value.find(segment, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True

    return match


def _numeric_test(argument: Any, path: str) -> _Test:
    """``numeric``: ``["=", n]``, or a lower bound, an upper bound, or both."""
    example = '[">", 0, "<=", 5]'
    if not _is_array(argument) or not argument:
        raise _fail(
            path, f"numeric must be a non-empty array such as {example}, got {_describe(argument)}"
        )
    terms = list(argument)
    bounds: list[tuple[str, int | float]] = []
    i = 0
    while i < len(terms):
        operator = terms[i]
        if not isinstance(operator, str) or operator not in _NUMERIC_OPERATORS:
            shown = repr(operator) if isinstance(operator, str) else _describe(operator)
            raise _fail(
                path,
                f"numeric: unknown comparison {shown} at position {i + 1}; valid comparisons: "
                f"{', '.join(_NUMERIC_OPERATORS)}",
            )
        if i + 1 >= len(terms) or not _is_number(terms[i + 1]):
            got = _describe(terms[i + 1]) if i + 1 < len(terms) else "nothing"
            raise _fail(path, f"numeric: {operator!r} must be followed by a number, got {got}")
        operand = terms[i + 1]
        _check_numeric_limit(operand, path, "numeric")
        bounds.append((operator, operand))
        i += 2

    first_op, first = bounds[0]
    if len(bounds) == 1:
        second_op, second = None, None
    elif len(bounds) == 2:
        second_op, second = bounds[1]
        if first_op not in (">", ">="):
            raise _fail(
                path,
                f"numeric: {first_op!r} must be the last comparison; write the lower bound "
                f"('>' or '>=') first, as in {example}",
            )
        if second_op not in ("<", "<="):
            raise _fail(
                path,
                f"numeric: after the lower bound {first_op!r} comes an upper bound "
                f"('<' or '<='), got {second_op!r}",
            )
        if not first < second:
            raise _fail(
                path,
                f"numeric: the lower bound {first!r} must be less than the upper bound {second!r}",
            )
    else:
        raise _fail(
            path,
            f"numeric: too many comparisons ({len(bounds)}); use '=' alone, or at most a "
            f"lower and an upper bound, as in {example}",
        )

    low: float = -math.inf
    high: float = math.inf
    low_open = high_open = False
    for operator, operand in ((first_op, first), (second_op, second)):
        if operator is None or operand is None:
            continue
        if operator == "=":
            low = high = operand
        elif operator in (">", ">="):
            low, low_open = operand, operator == ">"
        else:
            high, high_open = operand, operator == "<"

    def test(value: Any) -> bool:
        if not _is_number(value) or not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:
            return False
        if value < low or (low_open and value == low):
            return False
        return not (value > high or (high_open and value == high))

    return test


def _cidr_test(argument: Any, path: str) -> _Test:
    example = '"10.0.0.0/24"'
    if not isinstance(argument, str):
        raise _fail(path, f"cidr must be a string such as {example}, got {_describe(argument)}")
    parts = argument.split("/")
    if len(parts) != 2:
        raise _fail(
            path,
            f"cidr {argument!r} is malformed: it needs exactly one '/' as in {example}",
        )
    address_text, bits = parts
    if not (bits.isascii() and bits.isdigit()):
        raise _fail(path, f"cidr {argument!r}: the mask bits {bits!r} must be an integer")
    address = _ip(address_text)
    if address is None:
        raise _fail(path, f"cidr {argument!r}: {address_text!r} is not an IPv4 or IPv6 address")
    if int(bits) > address.max_prefixlen:
        raise _fail(
            path,
            f"cidr {argument!r}: the mask bits must be 0 to {address.max_prefixlen} for an "
            f"IPv{address.version} address",
        )
    network = ipaddress.ip_network(argument, strict=False)

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        candidate = _ip(value)
        return (
            candidate is not None and candidate.version == network.version and candidate in network
        )

    return test


def _string_list(argument: Any, path: str, what: str, *, allow_empty: bool) -> list[str]:
    """A string or a non-empty array of strings, as anything-but's options take."""
    values = list(argument) if _is_array(argument) else [argument]
    if not values:
        raise _fail(path, f"{what} needs at least one string, got an empty array")
    for value in values:
        if not isinstance(value, str):
            raise _fail(
                path,
                f"{what} must be a string or an array of strings, got {_describe(value)}",
            )
        if not allow_empty and not value:
            raise _fail(path, f"{what} must not be empty")
    return values


def _anything_but_option(option: str, inner: Any, path: str, label: str) -> Callable[[str], bool]:
    """The string test an ``anything-but`` object option excludes."""
    if option in ("prefix", "suffix"):
        affixes = tuple(_string_list(inner, path, label, allow_empty=False))
        if option == "prefix":

            def starts(value: str) -> bool:
                return value.startswith(affixes)

            return starts

        def ends(value: str) -> bool:
            return value.endswith(affixes)

        return ends
    if option == "equals-ignore-case":
        folded = frozenset(v.lower() for v in _string_list(inner, path, label, allow_empty=True))

        def same(value: str) -> bool:
            return value.lower() in folded

        return same
    if _is_array(inner) and not inner:
        raise _fail(path, f"{label} needs at least one string, got an empty array")
    matchers = tuple(_wildcard(t, path, label) for t in (inner if _is_array(inner) else [inner]))

    def wild(value: str) -> bool:
        return any(m(value) for m in matchers)

    return wild


def _anything_but_test(argument: Any, path: str) -> _Test:
    what = "anything-but"
    if isinstance(argument, str):
        excluded = frozenset({argument})
        return lambda value: not (isinstance(value, str) and value in excluded)
    if _is_number(argument):
        _check_numeric_limit(argument, path, what)
        excluded_number = frozenset({argument})
        return lambda value: not (_is_number(value) and value in excluded_number)
    if _is_array(argument):
        values = list(argument)
        if not values:
            raise _fail(path, f"{what} needs at least one value, got an empty array")
        if all(isinstance(v, str) for v in values):
            strings = frozenset(values)
            return lambda value: not (isinstance(value, str) and value in strings)
        if all(_is_number(v) for v in values):
            for v in values:
                _check_numeric_limit(v, path, what)
            numbers = frozenset(values)
            return lambda value: not (_is_number(value) and value in numbers)
        odd = next((v for v in values if not isinstance(v, str) and not _is_number(v)), _MISSING)
        problem = "both strings and numbers" if odd is _MISSING else _describe(odd)
        raise _fail(
            path,
            f"{what} takes an array of only strings or only numbers, got {problem} in it",
        )
    if _is_object(argument):
        if len(argument) != 1 or next(iter(argument)) not in _ANYTHING_BUT_OPTIONS:
            options = ", ".join(repr(str(k)) for k in argument) or "none"
            raise _fail(
                path,
                f"{what} takes one option, got {options}; valid options: "
                f"{', '.join(_ANYTHING_BUT_OPTIONS)}",
            )
        ((option, inner),) = argument.items()
        excluded_test = _anything_but_option(option, inner, path, f"{what} {option}")
        return lambda value: not (isinstance(value, str) and excluded_test(value))
    raise _fail(
        path,
        f"{what} takes a string, a number, an array of strings or of numbers, or an object "
        f"with one of {', '.join(_ANYTHING_BUT_OPTIONS)}; got {_describe(argument)}",
    )


class _Slot:
    """What one branch requires of one key: leaves, and at most one nested object."""

    __slots__ = ("leaves", "plain", "sub", "terms")

    def __init__(
        self,
        leaves: tuple[_Leaf, ...] = (),
        plain: tuple[frozenset[str], ...] = (),
        sub: _Conj | None = None,
        terms: tuple[tuple[_Term, ...], ...] = (),
    ) -> None:
        self.leaves = leaves
        self.plain = plain  # exact-string sets of the leaves that have only those
        self.sub = sub
        self.terms = terms  # each leaf's values, as the wildcard complexity check sees them


class _Conj:
    """One ``$or``-free branch of a pattern: a conjunction, still as a tree."""

    __slots__ = ("slots",)

    def __init__(self, slots: dict[str, _Slot] | None = None) -> None:
        self.slots: dict[str, _Slot] = slots if slots is not None else {}

    def merged(self, other: _Conj) -> _Conj:
        """The conjunction of both; nested objects under one key merge into one, so
        that array-consistent matching still sees them as a single nested pattern."""
        slots = dict(self.slots)
        for key, theirs in other.slots.items():
            mine = slots.get(key)
            if mine is None:
                slots[key] = theirs
                continue
            if mine.sub is None:
                sub = theirs.sub
            elif theirs.sub is None:
                sub = mine.sub
            else:
                sub = mine.sub.merged(theirs.sub)
            slots[key] = _Slot(
                mine.leaves + theirs.leaves,
                mine.plain + theirs.plain,
                sub,
                mine.terms + theirs.terms,
            )
        return _Conj(slots)

    def build(self) -> _Node:
        fields: list[tuple[str, _Leaf | _Node]] = []
        for key, slot in self.slots.items():
            fields.extend((key, leaf) for leaf in slot.leaves)
            if slot.sub is not None:
                fields.append((key, slot.sub.build()))
        return _Node(tuple(fields))

    def fields(self, prefix: str = "") -> Iterator[tuple[str, tuple[_Term, ...]]]:
        """Every leaf of this branch by its dotted path, as EventBridge names fields."""
        for key, slot in self.slots.items():
            path = f"{prefix}.{key}" if prefix else key
            for terms in slot.terms:
                yield path, terms
            if slot.sub is not None:
                yield from slot.sub.fields(path)

    def hints(self, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], frozenset[str]]:
        """Paths whose value this branch requires to be one of a few exact strings."""
        found: dict[tuple[str, ...], frozenset[str]] = {}
        for key, slot in self.slots.items():
            path = (*prefix, key)
            if slot.plain:
                found[path] = min(slot.plain, key=len)
            if slot.sub is not None:
                found.update(slot.sub.hints(path))
        return found


def _compile_object(obj: Mapping[Any, Any], path: str, in_or: bool) -> list[_Conj]:
    branches = [_Conj()]
    for key, value in obj.items():
        if not isinstance(key, str):
            raise _fail(_join(path, repr(key)), f"keys must be strings, got {_describe(key)}")
        where = _join(path, key)
        if key == "$or":
            alternatives = _compile_or(value, where)
            branches = [b.merged(a) for b in branches for a in alternatives]
        else:
            if in_or and key in _RESERVED_IN_OR:
                raise _fail(
                    where,
                    f"{key!r} is an operator name and cannot be a field name inside $or; "
                    f'operators go inside a value array, as in "field": [{{"{key}": ...}}]',
                )
            if _is_array(value):
                slot = _compile_leaf(value, where)
                branches = [b.merged(_nest(key, slot)) for b in branches]
            elif _is_object(value):
                if not value:
                    raise _fail(where, "empty objects are not allowed")
                subs = _compile_object(value, where, in_or)
                branches = [b.merged(_nest(key, _Slot(sub=s))) for b in branches for s in subs]
            else:
                hint = (
                    f"; write [{json.dumps(value)}]"
                    if value is None or isinstance(value, (str, int, float))
                    else ""
                )
                raise _fail(
                    where,
                    f"must be an array of values or a nested object, got {_describe(value)}{hint}",
                )
        if len(branches) > _MAX_BRANCHES:
            raise _fail(
                where,
                f"the $or alternatives combine into more than {_MAX_BRANCHES} branches; "
                "simplify the pattern",
            )
    return branches


def _nest(key: str, slot: _Slot) -> _Conj:
    """The conjunction requiring ``slot`` at ``key``, a dotted key spelling a nested path.

    EventBridge joins nested field names with dots when it compiles a pattern, so
    ``{"a.b": [1]}`` and ``{"a": {"b": [1]}}`` are the same pattern; nesting the parts
    here lets both merge with the rest of the pattern as one nested object.
    """
    *outer, last = key.split(".")
    conj = _Conj({last: slot})
    for part in reversed(outer):
        conj = _Conj({part: _Slot(sub=conj)})
    return conj


def _compile_or(value: Any, path: str) -> list[_Conj]:
    if not _is_array(value) or len(value) < 2:
        got = _describe(value)
        if _is_array(value):
            got = f"an array of {len(value)}"
        raise _fail(path, f"$or must be an array of at least 2 objects, got {got}")
    alternatives: list[_Conj] = []
    for i, alternative in enumerate(value):
        where = f"{path}[{i}]"
        if not _is_object(alternative):
            raise _fail(
                where, f"each $or alternative must be an object, got {_describe(alternative)}"
            )
        if not alternative:
            raise _fail(where, "empty objects are not allowed")
        alternatives.extend(_compile_object(alternative, where, in_or=True))
    return alternatives


def _compile_leaf(values: Any, path: str) -> _Slot:
    if not values:
        raise _fail(path, "empty arrays are not allowed; list at least one value")
    builder = _LeafBuilder(path)
    for value in values:
        builder.add(value)
    plain = (frozenset(builder.strings),) if builder.plain_strings else ()
    terms = tuple(_term(value) for value in values)
    return _Slot(leaves=(builder.build(),), plain=plain, terms=(terms,))


# ---------------------------------------------------------------------------------------
# Wildcard complexity: refuse what EventBridge refuses as "too complex"


#: The most wildcard prefixes that may match one value at once (see `_check_complexity`).
WILDCARD_COMPLEXITY_LIMIT: Final = 10
_STAR: Final = 256  # a wildcard in a tokenized pattern; bytes are 0-255
_OTHER: Final = -1  # stands for every byte no pattern spells out


class _Term:
    """One value of a pattern array, as the complexity check sees it."""

    __slots__ = ("absent", "identity", "wildcards")

    def __init__(self, identity: str, wildcards: tuple[str, ...], absent: bool) -> None:
        self.identity = identity  # equal values lead to the same place in AWS's machine
        self.wildcards = wildcards  # the wildcard strings of a wildcard test
        self.absent = absent  # {"exists": false}


def _term(value: Any) -> _Term:
    """Describe a validated pattern value for the complexity check."""
    identity = json.dumps(value, sort_keys=True, separators=(",", ":"))
    wildcards: tuple[str, ...] = ()
    if _is_object(value) and len(value) == 1:
        ((name, argument),) = value.items()
        if name == "wildcard":
            wildcards = (argument,)
        elif name == "anything-but" and _is_object(argument) and "wildcard" in argument:
            inner = argument["wildcard"]
            wildcards = tuple(dict.fromkeys(inner)) if _is_array(inner) else (inner,)
        return _Term(identity, wildcards, name == "exists" and argument is False)
    return _Term(identity, wildcards, False)


class _ByteState:
    """A state of the byte automaton AWS's matcher builds for one field's values."""

    __slots__ = ("any", "literal", "prefix", "star", "weight")

    def __init__(self) -> None:
        self.literal: dict[int, list[int]] = {}  # byte -> next states
        self.any: list[int] = []  # states reached on every byte (a wildcard's loop)
        self.prefix: dict[int, int] = {}  # the shared trie before the first wildcard
        self.star: int | None = None  # the shared wildcard state after that trie node
        self.weight: set[str] = set()  # the patterns whose path runs through this state


def _tokens(wildcard: str) -> list[int]:
    """The pattern as AWS's matcher reads it: UTF-8 bytes and wildcards, in quotes."""
    tokens = [ord('"')]
    escaped = False
    for char in wildcard:
        if char == "\\" and not escaped:
            escaped = True
            continue
        if char == "*" and not escaped:
            tokens.append(_STAR)
        else:
            tokens.extend(char.encode("utf-8"))
        escaped = False
    tokens.append(ord('"'))
    return tokens


def _wildcard_complexity(terms: list[_Term], limit: int) -> int:
    """How many wildcard pattern prefixes can match one value at once, at most.

    This is the measure of aws/event-ruler's MachineComplexityEvaluator (the matcher
    behind EventBridge): build the automaton of the field's wildcard patterns, where
    patterns share their states up to and including their first wildcard and each has
    its own states after it; then, over every set of states some input can reach,
    count the patterns that each active state (and each wildcard one byte away) can
    still complete. Stops at the first count above ``limit`` and returns that count.
    """
    states = [_ByteState()]
    finals: dict[str, int] = {}
    done: set[tuple[str, str]] = set()
    alphabet: set[int] = set()

    def new() -> int:
        states.append(_ByteState())
        return len(states) - 1

    for term in terms:
        for wildcard in term.wildcards:
            if (term.identity, wildcard) in done:
                continue
            done.add((term.identity, wildcard))
            tokens = _tokens(wildcard)
            current, previous, shared = 0, 0, True
            for i, token in enumerate(tokens):
                here = states[current]
                if i == len(tokens) - 1:  # the closing quote: the pattern's match
                    target = finals.get(term.identity)
                    if target is None:
                        target = finals[term.identity] = new()
                    created = True
                elif token == _STAR:
                    target = here.star if shared else None
                    created = target is None
                    if target is None:
                        target = new()
                        if shared:
                            here.star = target
                    shared = False
                elif shared and token in here.prefix:
                    target, created = here.prefix[token], False
                else:
                    target, created = new(), True
                    if shared:
                        here.prefix[token] = target
                if token == _STAR:
                    if not states[target].any:
                        here.any.append(target)
                        states[target].any.append(target)
                elif created:
                    alphabet.add(token)
                    here.literal.setdefault(token, []).append(target)
                    if i > 0 and tokens[i - 1] == _STAR:  # the wildcard may match nothing
                        states[previous].literal.setdefault(token, []).append(target)
                states[target].weight.add(term.identity)
                previous, current = current, target
    if not finals:
        return 0
    worst = 0
    seen: set[frozenset[int]] = set()
    pending = [frozenset({0})]
    inputs = [_OTHER, *sorted(alphabet)]
    while pending:
        active = pending.pop()
        for byte in inputs:
            reached: set[int] = set()
            for state in active:
                reached.update(states[state].any)
                if byte != _OTHER:
                    reached.update(states[state].literal.get(byte, ()))
            if not reached:
                continue
            count = 0
            for state in reached:
                count += len(states[state].weight)
                # A value matching "foo" also matches the prefix "foo*".
                count += sum(len(states[w].weight) for w in states[state].any if w not in reached)
            if count > limit:
                return count
            worst = max(worst, count)
            key = frozenset(reached)
            if key not in seen:
                seen.add(key)
                pending.append(key)
    return worst


class _Machine:
    """The values one field has at one point of AWS's rule machine."""

    __slots__ = ("following", "next", "terms")

    def __init__(self) -> None:
        self.terms: list[_Term] = []
        self.next: dict[str, _NameState] = {}  # value identity -> where matching goes on
        self.following: set[_NameState] = set()  # reached through a value, not an absence


class _NameState:
    __slots__ = ("fields",)

    def __init__(self) -> None:
        self.fields: dict[str, _Machine] = {}


def _check_complexity(branches: list[_Conj]) -> None:
    """Refuse a pattern whose wildcards EventBridge would reject as too complex.

    EventBridge compiles a rule's fields, sorted by their dotted names, into a chain of
    per-field byte machines (equal values of a field lead to the same next step) and
    rejects the rule with InvalidEventPatternException ("Rule is too complex") when a
    machine's wildcard complexity (see `_wildcard_complexity`) is above its limit.
    AWS documents the rejection and what raises the measure (more wildcards, repeated
    sequences after a wildcard) but not the number; `WILDCARD_COMPLEXITY_LIMIT` is
    the cap aws/event-ruler's own tests call production's (rejected from 11).
    """
    if not any(t.wildcards for b in branches for _, terms in b.fields() for t in terms):
        return
    root = _NameState()
    for branch in branches:
        level = {root}
        for path, terms in sorted(branch.fields(), key=lambda field: field[0]):
            following: set[_NameState] = set()
            for state in level:
                machine = state.fields.setdefault(path, _Machine())
                last: _NameState | None = None
                for term in terms:
                    machine.terms.append(term)
                    known = machine.next.get(term.identity)
                    if known is None:
                        known = last if last is not None else _NameState()
                        machine.next[term.identity] = known
                    last = known
                    following.add(known)
                    if not term.absent:
                        machine.following.add(known)
            level = following
    seen: set[_NameState] = set()
    pending = [root]
    while pending:
        state = pending.pop()
        if state in seen:
            continue
        seen.add(state)
        for path, machine in state.fields.items():
            count = _wildcard_complexity(machine.terms, WILDCARD_COMPLEXITY_LIMIT)
            if count > WILDCARD_COMPLEXITY_LIMIT:
                raise _fail(
                    path,
                    f"the wildcard patterns are too complex: {count} or more wildcard "
                    f"prefixes can match one value at once, and EventBridge allows at most "
                    f"{WILDCARD_COMPLEXITY_LIMIT} (it rejects such a rule as 'Rule is too "
                    "complex'); use fewer wildcard characters, fewer repeated character "
                    "sequences after a wildcard, or a prefix or suffix test instead",
                )
            pending.extend(machine.following)


# ---------------------------------------------------------------------------------------
# Dotted field names in events


def _undot(value: Any) -> Any:
    """The event with every dotted key spread into the nested path it spells.

    EventBridge names an event's fields by joining nested keys with dots, so the key
    ``"a.b"`` and the key ``"b"`` inside ``"a"`` are one field. Returns ``value``
    itself when it has no dotted key (the common case costs one walk, no copy).
    Where a dotted key and nesting name the same field, objects merge key by key and
    leaf values collect into an array, as several values of one field.
    """
    return _spread(value) if _has_dotted_key(value) else value


def _has_dotted_key(value: Any) -> bool:
    """Whether any object in ``value`` has a key with a dot: the cheap check first."""
    pending = [value]
    while pending:
        item = pending.pop()
        kind = type(item)
        if kind is dict:  # decoded JSON: exact types keep this loop fast
            try:
                if "." in "".join(item):  # every key at once
                    return True
            except TypeError:  # a key that is not a string: let _spread look closer
                return True
            for inner in item.values():
                kind = type(inner)
                if kind is dict or kind is list:
                    pending.append(inner)
        elif kind is list:
            for inner in item:
                kind = type(inner)
                if kind is dict or kind is list:
                    pending.append(inner)
        elif _is_object(item):
            if any(not isinstance(key, str) or "." in key for key in item):
                return True
            pending.extend(
                inner for inner in item.values() if _is_object(inner) or _is_array(inner)
            )
        elif _is_array(item):
            pending.extend(inner for inner in item if _is_object(inner) or _is_array(inner))
    return False


def _spread(value: Any) -> Any:
    """`_undot` for a value known to hold dotted keys; returns it unchanged if it has none."""
    if _is_object(value):
        rebuilt: list[tuple[Any, Any]] | None = None
        for i, (key, item) in enumerate(value.items()):
            new = _spread(item) if _is_object(item) or _is_array(item) else item
            if rebuilt is None and (new is not item or (isinstance(key, str) and "." in key)):
                rebuilt = list(value.items())[:i]
            if rebuilt is not None:
                rebuilt.append((key, new))
        if rebuilt is None:
            return value
        spread: dict[Any, Any] = {}
        for key, item in rebuilt:
            parts = key.split(".") if isinstance(key, str) else [key]
            for part in reversed(parts[1:]):
                item = {part: item}
            head = parts[0]
            spread[head] = _merge(spread[head], item) if head in spread else item
        return spread
    if _is_array(value):
        items = [_spread(item) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return items
    return value


def _merge(mine: Any, theirs: Any) -> Any:
    """Two values given to one field: objects merge key by key, anything else lists."""
    if _is_object(mine) and _is_object(theirs):
        merged = dict(mine)
        for key, item in theirs.items():
            merged[key] = _merge(merged[key], item) if key in merged else item
        return merged
    return [*(mine if _is_array(mine) else [mine]), *(theirs if _is_array(theirs) else [theirs])]


# ---------------------------------------------------------------------------------------
# Public API


class Pattern:
    """A validated, compiled event pattern. Immutable; create it with `compile_pattern`.

    Two patterns are equal when their canonical JSON `text` is; a pattern is hashable.
    """

    __slots__ = ("_branches", "_hints", "_text")

    _branches: tuple[_Node, ...]
    _hints: tuple[dict[tuple[str, ...], frozenset[str]], ...]
    _text: str

    def __init__(self, branches: list[_Conj], text: str) -> None:
        object.__setattr__(self, "_branches", tuple(b.build() for b in branches))
        object.__setattr__(self, "_hints", tuple(b.hints() for b in branches))
        object.__setattr__(self, "_text", text)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def text(self) -> str:
        """The pattern as canonical JSON (sorted keys, no spaces)."""
        return self._text

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Return whether ``event`` (a decoded JSON object) matches this pattern."""
        return self._matches(_undot(event))

    def _matches(self, event: Mapping[str, Any]) -> bool:
        """`matches` for an event whose dotted keys `_undot` has already spread."""
        return any(branch.matches(event) for branch in self._branches)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pattern) and other._text == self._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __repr__(self) -> str:
        return f"Pattern({self._text})"


def compile_pattern(pattern: Mapping[str, Any]) -> Pattern:
    """Validate ``pattern`` completely and compile it into a `Pattern`.

    ``pattern`` is a decoded JSON object. Raises `InvalidPatternError`, whose message
    names the path of the offending key, the bad value and the valid choices.
    """
    if not _is_object(pattern):
        raise InvalidPatternError(
            f"an event pattern must be a JSON object, got {_describe(pattern)}"
        )
    branches = _compile_object(pattern, "", in_or=False)
    _check_complexity(branches)
    # Validation has proved the pattern is plain JSON with string keys.
    text = json.dumps(pattern, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Pattern(branches, text)


@functools.lru_cache(maxsize=256)
def _compile_text(text: str) -> Pattern:
    return compile_pattern(json.loads(text))


def matches(pattern: Mapping[str, Any] | Pattern, event: Mapping[str, Any]) -> bool:
    """Return whether ``event`` matches ``pattern``, compiling the pattern if needed.

    Compiled patterns are cached by their JSON text (a small LRU), so calling this in a
    loop with the same pattern compiles it once. Raises `InvalidPatternError` for an
    invalid pattern.
    """
    if isinstance(pattern, Pattern):
        return pattern.matches(event)
    try:
        text = json.dumps(pattern, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        text = None
    if text is None or not _has_string_keys(pattern):
        # Not plain JSON (odd keys or values, NaN): its JSON text would hide the problem,
        # so compile it uncached and let the error name it.
        return compile_pattern(pattern).matches(event)
    return _compile_text(text).matches(event)


def _has_string_keys(value: Any) -> bool:
    """Whether every object key is a string (json.dumps quietly stringifies others)."""
    if _is_object(value):
        return all(isinstance(k, str) and _has_string_keys(v) for k, v in value.items())
    if _is_array(value):
        return all(_has_string_keys(v) for v in value)
    return True


K = TypeVar("K", bound=Hashable)


def _strings_at(event: Any, path: tuple[str, ...]) -> Iterator[str]:
    """Yield every string an event holds at ``path``, looking through arrays."""
    level = [event]
    for key in path:
        following: list[Any] = []
        for value in level:
            items = _flatten(value) if _is_array(value) else (value,)
            for item in items:
                if _is_object(item):
                    found = item.get(key, _MISSING)
                    if found is not _MISSING:
                        following.append(found)
        if not following:
            return
        level = following
    for value in level:
        if isinstance(value, str):
            yield value
        elif _is_array(value):
            yield from (item for item in _flatten(value) if isinstance(item, str))


class PatternIndex(Generic[K]):
    """Many rules, one event: matching cost does not grow with the number of rules in
    the common case.

    Each pattern is filed under one field whose allowed values are all exact strings in
    every ``$or`` branch (typically ``source`` or ``detail-type``), keyed by those
    strings. `match` looks up the event's values for each such field and tests only the
    patterns found there, plus the few patterns with no such field.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[K, Pattern]] = []
        self._tables: dict[tuple[str, ...], dict[str, list[int]]] = {}
        self._residual: list[int] = []

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, key: K, pattern: Pattern) -> None:
        """File ``pattern`` under ``key``. Adding several patterns under one key makes
        the key match when any of them does."""
        if not isinstance(pattern, Pattern):
            raise TypeError(
                f"PatternIndex.add takes a compiled Pattern (see compile_pattern), "
                f"got {type(pattern).__name__}"
            )
        position = len(self._entries)
        self._entries.append((key, pattern))
        choice = self._choose_field(pattern)
        if choice is None:
            self._residual.append(position)
            return
        path, values = choice
        table = self._tables.setdefault(path, {})
        for value in values:
            table.setdefault(value, []).append(position)

    def _choose_field(self, pattern: Pattern) -> tuple[tuple[str, ...], frozenset[str]] | None:
        hints = pattern._hints
        common = set(hints[0])
        for branch in hints[1:]:
            common &= branch.keys()
        if not common:
            return None

        def values(path: tuple[str, ...]) -> frozenset[str]:
            return frozenset().union(*(branch[path] for branch in hints))

        def crowding(path: tuple[str, ...]) -> int:
            table = self._tables.get(path, {})
            return sum(len(table.get(value, ())) for value in values(path))

        # File the pattern where it joins the fewest others, so that an event's lookups
        # return few candidates (patterns sharing one "detail-type" spread out over
        # their "source" values); then prefer a field already indexed (one lookup less
        # per event) and a shallow one.
        path = min(common, key=lambda p: (crowding(p), p not in self._tables, len(p), p))
        return path, values(path)

    def match(self, event: Mapping[str, Any]) -> list[K]:
        """Return the keys of every pattern ``event`` matches, each once, in the order
        they were first added."""
        event = _undot(event)  # once for every lookup and every candidate
        candidates = set(self._residual)
        for path, table in self._tables.items():
            for value in _strings_at(event, path):
                found = table.get(value)
                if found:
                    candidates.update(found)
        matched: list[K] = []
        seen: set[K] = set()
        for position in sorted(candidates):
            key, pattern = self._entries[position]
            if key not in seen and pattern._matches(event):
                matched.append(key)
                seen.add(key)
        return matched
