"""Binds parsed expressions to typed bound expressions, checking names, functions and types.

One `Binder` serves one query. Its `bind` takes a `resolve_column` strategy so the same code
binds row expressions (WHERE, ON, GROUP BY keys), aggregate outputs (SELECT and HAVING of a
GROUP BY query, where columns must be group keys) and pattern-matching conditions.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from sqlglot import exp

from streamhouse_runtime.sql import bound, nodes
from streamhouse_runtime.sql import functions as fn
from streamhouse_runtime.sql import types as t
from streamhouse_runtime.sql.catalog import Catalog
from streamhouse_runtime.sql.constructors import bind_constructor, is_constructor
from streamhouse_runtime.sql.ddl import UnsupportedType, sql_type
from streamhouse_runtime.sql.errors import ErrorCode, suggestion
from streamhouse_runtime.sql.jsonpath import ENCODINGS, json_path
from streamhouse_runtime.sql.lambdas import bind_lambda_call, is_lambda_call
from streamhouse_runtime.sql.regex import RegexError, compile_regex
from streamhouse_runtime.sql.types import SqlType, TypeKind

Fail = Callable[[ErrorCode, str, exp.Expr | None], NoReturn]
# Called for every sub-expression before the generic rules; returns a bound expression to use
# instead (a group key, an aggregate result, a window bound) or None to continue normally.
Intercept = Callable[[exp.Expr], bound.Expr | None]
ResolveColumn = Callable[[exp.Column], bound.Expr]

UNIT_MS = {
    "MILLISECOND": 1,
    "SECOND": 1_000,
    "MINUTE": 60_000,
    "HOUR": 3_600_000,
    "DAY": 86_400_000,
    "WEEK": 604_800_000,
}
MAX_INTERVAL_MS = 1_000_000 * 365 * UNIT_MS["DAY"]  # a million years

_COMPARISONS: dict[type[exp.Expr], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
    exp.NullSafeEQ: "IS NOT DISTINCT FROM",
    exp.NullSafeNEQ: "IS DISTINCT FROM",
}
_ARITHMETIC: dict[type[exp.Expr], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}
AGGREGATE_NAMES = set(fn.AGGREGATES) | {
    alias for alias, name in fn.ALIASES.items() if name in fn.AGGREGATES
}
# Built-in functions whose second argument is a regular expression.
REGEX_FUNCTIONS = frozenset({"REGEXP_EXTRACT", "REGEXP_REPLACE"})


def interval_ms(node: exp.Expr, fail: Fail, allow_zero: bool = False) -> int:
    """Milliseconds of `INTERVAL '5' MINUTE` (and ksqlDB durations, normalized to that shape);
    `allow_zero` for a grace period, which may be 0 (late records are then dropped at once)."""
    if not isinstance(node, exp.Interval):
        fail(ErrorCode.TYPE_MISMATCH, "expected an interval such as INTERVAL '5' MINUTE", node)
    amount_node = node.this
    unit_node = node.args.get("unit")
    amount_text = amount_node.name if isinstance(amount_node, exp.Expr) else str(amount_node)
    unit = unit_node.name.upper() if isinstance(unit_node, exp.Expr) else ""
    parts = amount_text.split()
    if len(parts) == 2 and not unit:  # INTERVAL '5 minutes'
        amount_text, unit = parts[0], parts[1].upper()
    unit = unit.rstrip("S") if unit.endswith("S") and unit != "MILLISECONDS" else unit
    unit = "MILLISECOND" if unit in ("MILLISECONDS", "MS") else unit
    if unit not in UNIT_MS:
        fail(ErrorCode.INVALID_LITERAL, f"unsupported interval unit '{unit or '?'}'", node)
    try:
        amount = Decimal(amount_text)
    except InvalidOperation:
        fail(ErrorCode.INVALID_LITERAL, f"interval amount '{amount_text}' is not a number", node)
    # NaN and Infinity have no length; beyond a million years no window means anything.
    # A huge exponent (1e999999) is refused before multiplying: the product overflows Decimal.
    too_long = not amount.is_finite() or amount.adjusted() > 18
    if too_long or abs(amount) * UNIT_MS[unit] > MAX_INTERVAL_MS:
        fail(
            ErrorCode.INVALID_LITERAL, f"interval amount '{amount_text[:40]}' is out of range", node
        )
    milliseconds = int(amount * UNIT_MS[unit])
    if milliseconds < 0 or (milliseconds == 0 and not allow_zero):
        fail(ErrorCode.INVALID_LITERAL, "intervals must be positive", node)
    return milliseconds


# The bound name of ROUND under ksqldb (ties toward positive infinity); not callable in SQL.
ROUND_HALF_CEILING = "ROUND_HALF_CEILING"

# sqlglot's canonical names that differ from the names users write.
_SQLGLOT_NAMES: dict[type[exp.Expr], str] = {
    exp.StrPosition: "INSTR",
    exp.ArrayAgg: "COLLECT_LIST",
    exp.ArraySize: "CARDINALITY",
}


def _encoding(name: str) -> str:
    if name.lower() not in ENCODINGS:
        raise ValueError(f"unknown encoding '{name[:40]}' (one of {', '.join(ENCODINGS)})")
    return name


def call_parts(node: exp.Func) -> tuple[str, list[exp.Expr]]:
    """Function name (upper-case) and positional arguments of any sqlglot function node."""
    if isinstance(node, exp.Anonymous):
        return node.name.upper(), [a for a in node.expressions if isinstance(a, exp.Expr)]
    name = _SQLGLOT_NAMES.get(type(node), node.sql_name().upper())
    if isinstance(node, exp.Pad):
        name = "LPAD" if node.args.get("is_left") else "RPAD"
    if isinstance(node, exp.Initcap):  # sqlglot adds a default delimiter argument
        return name, [node.this]
    if isinstance(node, exp.Trim):  # sqlglot reads LTRIM/RTRIM as TRIM with a position
        position = str(node.args.get("position") or "").upper()
        return {"LEADING": "LTRIM", "TRAILING": "RTRIM"}.get(position, "TRIM"), [node.this]
    args: list[exp.Expr] = []
    for key in node.arg_types:
        value = node.args.get(key)
        if isinstance(value, list):
            args.extend(v for v in value if isinstance(v, exp.Expr))
        elif isinstance(value, exp.Expr):
            args.append(value)
    return name, args


def is_aggregate_call(node: exp.Expr) -> bool:
    if isinstance(node, exp.AggFunc):
        return True
    return isinstance(node, exp.Anonymous) and node.name.upper() in AGGREGATE_NAMES


def contains_aggregate(node: exp.Expr) -> bool:
    """True when an aggregate call appears outside any OVER (...) window."""
    for sub in node.walk(prune=lambda n: isinstance(n, exp.Window)):
        if is_aggregate_call(sub) and not isinstance(sub.parent, exp.Window):
            return True
    return False


def literal(node: exp.Literal, fail: Fail) -> bound.Literal:
    text = node.name
    if node.is_string:
        return bound.Literal(t.VARCHAR, text)
    lowered = text.lower()
    try:
        if "e" in lowered:
            return bound.Literal(t.DOUBLE, float(text))
        if "." in text:
            value = Decimal(text)
            digits = value.as_tuple().digits
            exponent = value.as_tuple().exponent
            scale = -exponent if isinstance(exponent, int) and exponent < 0 else 0
            return bound.Literal(t.decimal(max(len(digits), scale, 1), scale), value)
        number = int(text)
    except (ValueError, InvalidOperation):
        fail(ErrorCode.INVALID_LITERAL, f"'{text}' is not a valid number", node)
    if -(2**31) <= number < 2**31:
        return bound.Literal(t.INTEGER, number)
    if -(2**63) <= number < 2**63:
        return bound.Literal(t.BIGINT, number)
    fail(ErrorCode.INVALID_LITERAL, f"integer {text} does not fit in BIGINT", node)


def comparable(a: SqlType, b: SqlType) -> bool:
    if a.is_null or b.is_null or t.common_supertype(a, b) is not None:
        return True
    temporal_a = a.is_temporal or a.kind is TypeKind.BIGINT
    temporal_b = b.is_temporal or b.kind is TypeKind.BIGINT
    strings = {a.kind, b.kind} & {TypeKind.VARCHAR}
    # TIMESTAMP columns compare with epoch-millisecond numbers and ISO strings.
    return (a.is_temporal or b.is_temporal) and ((temporal_a and temporal_b) or bool(strings))


def castable(source: SqlType, target: SqlType) -> bool:
    if source.is_null or source == target:
        return True
    scalar = {
        TypeKind.BOOLEAN, TypeKind.INTEGER, TypeKind.BIGINT, TypeKind.DECIMAL, TypeKind.DOUBLE,
        TypeKind.VARCHAR, TypeKind.TIMESTAMP, TypeKind.DATE, TypeKind.TIME,
    }  # fmt: skip
    if source.kind in scalar and target.kind in scalar:
        return True
    if TypeKind.BYTES in (source.kind, target.kind):
        return TypeKind.VARCHAR in (source.kind, target.kind)
    return False


class Binder:
    def __init__(self, catalog: Catalog, fail: Fail, ksqldb: bool = False) -> None:
        self.catalog = catalog
        self.fail = fail
        self.ksqldb = ksqldb  # ksqlDB's operator rules (`+` also joins two strings)
        # The innermost `bind`'s intercept, for lambda bodies (bound outside `visit`), and the
        # parameters of the lambdas being bound, innermost last.
        self._intercept: Intercept | None = None
        self._lambda_scopes: list[dict[str, SqlType]] = []

    def bind(
        self,
        node: exp.Expr,
        resolve_column: ResolveColumn,
        intercept: Intercept | None = None,
        context: str = "this clause",
    ) -> bound.Expr:
        """Bind `node`; aggregates are only legal when `intercept` takes them."""

        def visit(sub: exp.Expr) -> bound.Expr:
            if intercept is not None:
                taken = intercept(sub)
                if taken is not None:
                    return taken
            return self._bind_node(sub, visit, resolve_column, context)

        outer, self._intercept = self._intercept, intercept
        try:
            return visit(node)
        finally:
            self._intercept = outer

    def require_boolean(self, expr: bound.Expr, node: exp.Expr, clause: str) -> None:
        if expr.type.kind not in (TypeKind.BOOLEAN, TypeKind.NULL):
            self.fail(
                ErrorCode.TYPE_MISMATCH,
                f"{clause} must be a BOOLEAN condition, not {expr.type}",
                node,
            )

    # -- the generic rules ----------------------------------------------------------------

    def _bind_node(
        self,
        node: exp.Expr,
        visit: Callable[[exp.Expr], bound.Expr],
        resolve_column: ResolveColumn,
        context: str,
    ) -> bound.Expr:
        fail = self.fail
        if isinstance(node, exp.Paren):
            return visit(node.this)
        if isinstance(node, exp.Column):
            return resolve_column(node)
        if isinstance(node, exp.Literal):
            return literal(node, fail)
        if isinstance(node, exp.Boolean):
            return bound.Literal(t.BOOLEAN, bool(node.this))
        if isinstance(node, exp.Null):
            return bound.Literal(t.NULL, None)
        if isinstance(node, exp.Interval):
            return bound.Literal(t.INTERVAL, interval_ms(node, fail))
        if isinstance(node, exp.Neg):
            operand = visit(node.this)
            if not (operand.type.is_numeric or operand.type.is_null):
                fail(ErrorCode.TYPE_MISMATCH, f"cannot negate a {operand.type}", node)
            return bound.Call(operand.type, "NEG", (operand,))
        if isinstance(node, exp.Not):
            inner = node.this
            if isinstance(inner, exp.Is):
                operand = visit(inner.this)
                return bound.Call(t.BOOLEAN, "IS NOT NULL", (operand,))
            if isinstance(inner, exp.Like | exp.ILike):
                like = self._like(inner, visit)
                return bound.Call(t.BOOLEAN, "NOT " + like.function, like.args)
            if isinstance(inner, exp.In):
                membership = self._in(inner, visit)
                return bound.InList(t.BOOLEAN, membership.operand, membership.values, True)
            if isinstance(inner, exp.Between):
                return bound.Call(t.BOOLEAN, "NOT", (self._between(inner, visit),))
            operand = visit(inner)
            self.require_boolean(operand, inner, "NOT")
            return bound.Call(t.BOOLEAN, "NOT", (operand,))
        if isinstance(node, exp.And | exp.Or):
            left, right = visit(node.this), visit(node.expression)
            name = "AND" if isinstance(node, exp.And) else "OR"
            self.require_boolean(left, node.this, name)
            self.require_boolean(right, node.expression, name)
            return bound.Call(t.BOOLEAN, name, (left, right))
        if type(node) in _COMPARISONS:
            left, right = visit(node.this), visit(node.expression)
            if not comparable(left.type, right.type):
                fail(
                    ErrorCode.TYPE_MISMATCH,
                    f"cannot compare {left.type} with {right.type}",
                    node,
                )
            return bound.Call(t.BOOLEAN, _COMPARISONS[type(node)], (left, right))
        if type(node) in _ARITHMETIC:
            return self._arithmetic(node, _ARITHMETIC[type(node)], visit)
        if isinstance(node, exp.DPipe):
            left, right = visit(node.this), visit(node.expression)
            return bound.Call(t.VARCHAR, "||", (left, right))
        if isinstance(node, exp.Is):
            operand = visit(node.this)
            if not isinstance(node.expression, exp.Null):
                fail(ErrorCode.UNSUPPORTED, "only IS [NOT] NULL is supported here", node)
            negated = bool(node.args.get("negate"))  # sqlglot 30 folds NOT into the node
            return bound.Call(t.BOOLEAN, "IS NOT NULL" if negated else "IS NULL", (operand,))
        if isinstance(node, exp.Like | exp.ILike):
            like = self._like(node, visit)
            if node.args.get("negate"):
                return bound.Call(t.BOOLEAN, "NOT " + like.function, like.args)
            return like
        if isinstance(node, exp.In):
            return self._in(node, visit)
        if isinstance(node, exp.Between):
            return self._between(node, visit)
        if isinstance(node, exp.Case):
            return self._case(node, visit)
        if isinstance(node, exp.If):
            condition = visit(node.this)
            self.require_boolean(condition, node.this, "IF")
            then = visit(node.args["true"])
            otherwise = visit(node.args["false"]) if node.args.get("false") else None
            result = (
                then.type if otherwise is None else t.common_supertype(then.type, otherwise.type)
            )
            if result is None:
                fail(ErrorCode.TYPE_MISMATCH, "IF branches have incompatible types", node)
            return bound.Case(result, ((condition, then),), otherwise)
        if isinstance(node, exp.Cast | exp.TryCast):
            return self._cast(node, visit)
        if isinstance(node, nodes.FieldAccess):
            return self._field(visit(node.this), node.expression.name, node)
        if isinstance(node, exp.Dot):
            return self._field(visit(node.this), node.expression.name, node)
        if isinstance(node, exp.Bracket):
            container = visit(node.this)
            index = visit(node.expressions[0])
            if container.type.kind not in (TypeKind.ARRAY, TypeKind.MAP):
                fail(ErrorCode.TYPE_MISMATCH, f"cannot index a {container.type}", node)
            element = container.type.element or t.NULL
            return bound.Call(element, "ELEMENT_AT", (container, index))
        if isinstance(node, exp.Window):
            fail(ErrorCode.UNSUPPORTED, f"OVER (...) is not allowed in {context}", node)
        if isinstance(node, nodes.GroupWindow):
            fail(
                ErrorCode.WINDOW_OUTSIDE_GROUP_BY,
                f"{node.args['kind']}(...) is a grouping window: use it in GROUP BY",
                node,
            )
        if isinstance(node, nodes.GroupWindowBound):
            fail(
                ErrorCode.WINDOW_OUTSIDE_GROUP_BY,
                f"{node.args['kind']}_{node.args['bound']} needs a matching "
                f"{node.args['kind']}(...) in GROUP BY",
                node,
            )
        if is_constructor(node):
            return bind_constructor(node, visit, fail)
        if is_lambda_call(node):
            assert isinstance(node, exp.Anonymous)
            return bind_lambda_call(node, visit, self._body_binder(resolve_column, context), fail)
        if isinstance(node, exp.Lambda):
            fail(
                ErrorCode.UNSUPPORTED,
                "a lambda (x => ...) is only allowed in TRANSFORM, FILTER and REDUCE",
                node,
            )
        if isinstance(node, exp.Func):
            return self._function(node, visit, context)
        if isinstance(node, exp.Star):
            fail(ErrorCode.UNSUPPORTED, "* is only allowed in the select list and COUNT(*)", node)
        if isinstance(node, exp.Subquery | exp.Select):
            fail(ErrorCode.UNSUPPORTED, "subqueries are not supported in streaming queries", node)
        fail(ErrorCode.UNSUPPORTED, f"unsupported expression: {node.sql()}", node)

    def _body_binder(
        self, resolve_column: ResolveColumn, context: str
    ) -> Callable[[exp.Expr, dict[str, SqlType]], bound.Expr]:
        """Binds a lambda body: a name is the innermost lambda parameter it names, else what
        it names around the lambda. The enclosing intercept (group keys, aggregates in a
        GROUP BY query's SELECT) applies to parts of the body that use no parameter."""

        def parameter(name: str) -> SqlType | None:
            for scope in reversed(self._lambda_scopes):
                if name in scope:
                    return scope[name]
            return None

        def scoped(column: exp.Column) -> bound.Expr:
            name = column.name.lower()
            kind = None if column.table else parameter(name)
            return bound.LambdaVariable(kind, name) if kind is not None else resolve_column(column)

        def uses_parameter(node: exp.Expr) -> bool:
            return any(
                not column.table and parameter(column.name.lower()) is not None
                for column in node.find_all(exp.Column)
            )

        def visit_body(sub: exp.Expr) -> bound.Expr:
            intercept = self._intercept
            if intercept is not None and not uses_parameter(sub):
                taken = intercept(sub)
                if taken is not None:
                    return taken
            return self._bind_node(sub, visit_body, scoped, context)

        def bind_body(body: exp.Expr, scope: dict[str, SqlType]) -> bound.Expr:
            self._lambda_scopes.append(scope)
            try:
                return visit_body(body)
            finally:
                self._lambda_scopes.pop()

        return bind_body

    def _arithmetic(
        self, node: exp.Expr, op: str, visit: Callable[[exp.Expr], bound.Expr]
    ) -> bound.Expr:
        left, right = visit(node.this), visit(node.args["expression"])
        if op in ("+", "-") and left.type.is_temporal and right.type.kind is TypeKind.INTERVAL:
            return bound.Call(left.type, op, (left, right))
        strings = (left.type.kind, right.type.kind) == (TypeKind.VARCHAR, TypeKind.VARCHAR)
        if self.ksqldb and op == "+" and strings:
            return bound.Call(t.VARCHAR, "||", (left, right))
        result = t.arithmetic_result(op, left.type, right.type)
        if result is None:
            self.fail(
                ErrorCode.TYPE_MISMATCH,
                f"operator {op} needs numbers, got {left.type} {op} {right.type}",
                node,
            )
        return bound.Call(result, op, (left, right))

    def _like(self, node: exp.Expr, visit: Callable[[exp.Expr], bound.Expr]) -> bound.Call:
        value, pattern = visit(node.this), visit(node.args["expression"])
        for operand, part in ((value, node.this), (pattern, node.args["expression"])):
            if operand.type.kind not in (TypeKind.VARCHAR, TypeKind.NULL):
                self.fail(ErrorCode.TYPE_MISMATCH, f"LIKE needs strings, got {operand.type}", part)
        return bound.Call(
            t.BOOLEAN, "LIKE" if isinstance(node, exp.Like) else "ILIKE", (value, pattern)
        )

    def _in(self, node: exp.In, visit: Callable[[exp.Expr], bound.Expr]) -> bound.InList:
        if node.args.get("query"):
            self.fail(ErrorCode.UNSUPPORTED, "IN (subquery) is not supported", node)
        operand = visit(node.this)
        values = tuple(visit(v) for v in node.expressions)
        for value, part in zip(values, node.expressions, strict=True):
            if not comparable(operand.type, value.type):
                self.fail(
                    ErrorCode.TYPE_MISMATCH,
                    f"IN list value of type {value.type} does not match {operand.type}",
                    part,
                )
        return bound.InList(t.BOOLEAN, operand, values)

    def _between(self, node: exp.Between, visit: Callable[[exp.Expr], bound.Expr]) -> bound.Expr:
        operand = visit(node.this)
        low, high = visit(node.args["low"]), visit(node.args["high"])
        for bound_value, part in ((low, node.args["low"]), (high, node.args["high"])):
            if not comparable(operand.type, bound_value.type):
                self.fail(
                    ErrorCode.TYPE_MISMATCH,
                    f"BETWEEN bound of type {bound_value.type} does not match {operand.type}",
                    part,
                )
        return bound.Call(
            t.BOOLEAN,
            "AND",
            (
                bound.Call(t.BOOLEAN, ">=", (operand, low)),
                bound.Call(t.BOOLEAN, "<=", (operand, high)),
            ),
        )

    def _case(self, node: exp.Case, visit: Callable[[exp.Expr], bound.Expr]) -> bound.Expr:
        subject = visit(node.this) if node.this is not None else None
        whens: list[tuple[bound.Expr, bound.Expr]] = []
        result: SqlType = t.NULL
        for when in node.args.get("ifs") or []:
            condition = visit(when.this)
            if subject is not None:
                if not comparable(subject.type, condition.type):
                    self.fail(ErrorCode.TYPE_MISMATCH, "CASE value types differ", when.this)
                condition = bound.Call(t.BOOLEAN, "=", (subject, condition))
            else:
                self.require_boolean(condition, when.this, "WHEN")
            value = visit(when.args["true"])
            merged = t.common_supertype(result, value.type)
            if merged is None:
                self.fail(
                    ErrorCode.TYPE_MISMATCH,
                    f"CASE branches mix {result} and {value.type}",
                    when.args["true"],
                )
            result = merged
            whens.append((condition, value))
        default = visit(node.args["default"]) if node.args.get("default") is not None else None
        if default is not None:
            merged = t.common_supertype(result, default.type)
            if merged is None:
                self.fail(
                    ErrorCode.TYPE_MISMATCH,
                    f"CASE branches mix {result} and {default.type}",
                    node.args["default"],
                )
            result = merged
        return bound.Case(result, tuple(whens), default)

    def _cast(self, node: exp.Expr, visit: Callable[[exp.Expr], bound.Expr]) -> bound.Expr:
        operand = visit(node.this)
        target_node = node.args["to"]
        try:
            target = sql_type(target_node)
        except UnsupportedType:
            self.fail(ErrorCode.UNSUPPORTED, f"cannot cast to {target_node.sql()}", target_node)
        if not castable(operand.type, target):
            self.fail(ErrorCode.TYPE_MISMATCH, f"cannot cast {operand.type} to {target}", node)
        return bound.Cast(target, operand)

    def _field(self, operand: bound.Expr, name: str, node: exp.Expr) -> bound.Expr:
        if operand.type.kind is not TypeKind.STRUCT:
            self.fail(
                ErrorCode.TYPE_MISMATCH, f"cannot read field '{name}' of a {operand.type}", node
            )
        field_type = operand.type.field(name)
        if field_type is None:
            names = [n for n, _ in operand.type.fields]
            self.fail(
                ErrorCode.UNKNOWN_COLUMN,
                f"struct has no field '{name}'{suggestion(name, names)}",
                node,
            )
        return bound.FieldAccess(field_type, operand, name)

    def _function(
        self, node: exp.Func, visit: Callable[[exp.Expr], bound.Expr], context: str
    ) -> bound.Expr:
        name, arg_nodes = call_parts(node)
        if is_aggregate_call(node):
            self.fail(
                ErrorCode.AGGREGATE_IN_WHERE,
                f"aggregate function {name} is not allowed in {context}",
                node,
            )
        udf = self.catalog.function(name)
        if udf is not None:
            args = tuple(visit(a) for a in arg_nodes)
            if len(args) != len(udf.parameters):
                self.fail(
                    ErrorCode.WRONG_ARGUMENT_COUNT,
                    f"{udf.name} takes {len(udf.parameters)} arguments, got {len(args)}",
                    node,
                )
            for position, (arg, param) in enumerate(zip(args, udf.parameters, strict=True), 1):
                if t.common_supertype(arg.type, param.type) is None:
                    self.fail(
                        ErrorCode.WRONG_ARGUMENT_TYPE,
                        f"argument {position} of {udf.name} must be {param.type}, got {arg.type}",
                        arg_nodes[position - 1],
                    )
            return bound.Call(udf.returns, udf.name, args)
        signature = fn.lookup(name)
        if signature is None:
            written = node.name if isinstance(node, exp.Anonymous) else name
            known = fn.known_names() + list(self.catalog.functions)
            self.fail(
                ErrorCode.UNKNOWN_FUNCTION,
                f"unknown function {written}{suggestion(written, known)}",
                node,
            )
        args = tuple(visit(a) for a in arg_nodes)
        result = self._check_call(signature, args, node)
        if signature.name in REGEX_FUNCTIONS and len(args) > 1:
            self._check_regex(args[1], arg_nodes[1])
        if signature.name == "EXTRACTJSONFIELD":
            self._check_literal(args[1], arg_nodes[1], json_path)
        if signature.name == "ENCODE":
            for arg, arg_node in zip(args[1:], arg_nodes[1:], strict=True):
                self._check_literal(arg, arg_node, _encoding)
        if self.ksqldb and signature.name == "ROUND":
            # ksqlDB rounds a tie toward positive infinity (ROUND(-2.5) is -2), not away from 0.
            return bound.Call(result, ROUND_HALF_CEILING, args)
        return bound.Call(result, signature.name, args)

    def _check_literal(
        self, arg: bound.Expr, node: exp.Expr, check: Callable[[str], object]
    ) -> None:
        """A literal argument the function would refuse on every record is refused now."""
        if isinstance(arg, bound.Literal) and isinstance(arg.value, str):
            try:
                check(arg.value)
            except ValueError as error:
                self.fail(ErrorCode.INVALID_LITERAL, str(error), node)

    def _check_regex(self, pattern: bound.Expr, node: exp.Expr) -> None:
        """A literal pattern is compiled now: RE2 refuses what it cannot run in linear time
        (back-references, look-around), and the user hears it at validation time."""
        if isinstance(pattern, bound.Literal) and isinstance(pattern.value, str):
            try:
                compile_regex(pattern.value)
            except RegexError as error:
                self.fail(ErrorCode.INVALID_REGEX, str(error), node)

    def _check_call(
        self, signature: fn.Signature, args: tuple[bound.Expr, ...], node: exp.Expr
    ) -> SqlType:
        count = len(args)
        if count < signature.min_args or (
            signature.max_args is not None and count > signature.max_args
        ):
            expected = (
                str(signature.min_args)
                if signature.min_args == signature.max_args
                else f"{signature.min_args} to {signature.max_args or 'any number of'}"
            )
            self.fail(
                ErrorCode.WRONG_ARGUMENT_COUNT,
                f"{signature.name} takes {expected} arguments, got {count}",
                node,
            )
        problem = signature.check([a.type for a in args])
        if problem is not None:
            self.fail(ErrorCode.WRONG_ARGUMENT_TYPE, f"{signature.name}: {problem}", node)
        return signature.result([a.type for a in args])

    def aggregate(
        self, node: exp.Func, visit_argument: Callable[[exp.Expr], bound.Expr]
    ) -> bound.AggregateCall:
        """Bind an aggregate call; its arguments are bound with `visit_argument` (row mode)."""
        name, arg_nodes = call_parts(node)
        name = fn.ALIASES.get(name, name)
        signature = fn.AGGREGATES.get(name)
        if signature is None:
            self.fail(ErrorCode.UNKNOWN_FUNCTION, f"unknown aggregate function {name}", node)
        distinct = False
        args: list[bound.Expr] = []
        for arg in arg_nodes:
            if isinstance(arg, exp.Star):
                continue
            if isinstance(arg, exp.Distinct):
                distinct = True
                args.extend(visit_argument(a) for a in arg.expressions)
                continue
            if contains_aggregate(arg):
                self.fail(ErrorCode.NESTED_AGGREGATE, "aggregate calls cannot be nested", arg)
            args.append(visit_argument(arg))
        if distinct and name != "COUNT":
            self.fail(ErrorCode.UNSUPPORTED, "DISTINCT is only supported in COUNT", node)
        result = self._check_call(signature, tuple(args), node)
        first_constant = fn.CONSTANT_ARGUMENTS_FROM.get(name, len(args))
        constants = zip(args[first_constant:], arg_nodes[first_constant:], strict=False)
        for constant, constant_node in constants:
            self._check_constant_argument(name, constant, constant_node)
        return bound.AggregateCall(result, name, tuple(args), distinct)

    def _check_constant_argument(self, name: str, arg: bound.Expr, node: exp.Expr) -> None:
        """TOPK's k, EARLIEST_BY_OFFSET's n and ignoreNulls: a literal (a count at least 1),
        fixed for the query's life like ksqlDB's aggregate initial arguments."""
        if not isinstance(arg, bound.Literal) or arg.value is None:
            self.fail(
                ErrorCode.INVALID_LITERAL, f"{name}: {node.sql()} must be a literal value", node
            )
        if isinstance(arg.value, int) and not isinstance(arg.value, bool) and arg.value < 1:
            self.fail(ErrorCode.INVALID_LITERAL, f"{name}: the count must be at least 1", node)
