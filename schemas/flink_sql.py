r"""Flink SQL generated from a contract: typed extraction from raw JSON plus a rejection reason.

Invocation and span sources decode records with the `genai-contract` format instead (one
parse per record, flink_format.py), which implements these rules in Java with the same
functions; this SQL serves where the document is built inside the job (ingest's adapters)
and is held to the same Python reference by tests/unit/test_validate_vs_flink.py.

A malformed record is still a row: it gets a reason and goes to the dead-letter topic instead
of failing the job or vanishing.
JSON_VALUE's RETURNING DOUBLE/BIGINT fails the *job* on a mistyped value (checked on Flink 2.2),
so every scalar is extracted as text, matched against the contract's lexical rules and only
then converted, with TRY_CAST. ``genai_apm.schemas.validate`` is the same logic in Python;
tests/unit/test_validate_vs_flink.py holds the two together.

Flink behaviour this relies on (all checked on Flink 2.2):
- JSON_VALUE gives a JSON number as Java's BigDecimal.toString of its literal (1.5e1 -> "15",
  1e2 -> "1E+2", -0.0 -> "0.0"), true/false as text, and NULL for null, objects and arrays.
- REGEXP is a *find*, and Java's `$` also matches before a final line break: "12\n" matched
  '^[0-9]+$' and CAST('12\n' AS BIGINT) then failed the job. Patterns are therefore matched
  whole, by Java's Matcher.matches in the functions below.
- TO_TIMESTAMP_LTZ(text, format, zone) ignores an offset parsed by the format and uses
  ``zone``, and its lenient resolver turns 2026-02-30 into 2026-02-28: timestamps are
  therefore converted by GENAI_TIMESTAMP (Java, infra/udfs), the validator's algorithm.
- Field texts come from GENAI_JSON_TEXTS (Java, infra/udfs), which parses once and renders
  each value as JSON_VALUE does (see FieldTexts for why).
- Numbers are converted by GENAI_LONG / GENAI_DOUBLE (Java, ContractNumber): a whole-text
  match of the contract's pattern, then the conversion TRY_CAST would make. A check reads a
  value three or four times; with ``FieldTexts.numbers`` each is computed once, in a
  projection of its own (texts_view_sql).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from genai_apm.schemas.contract import (
    DOUBLE_TEXT,
    EPOCH_TEXT,
    LONG_TEXT,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    RFC3339_TEXT,
    Contract,
    Field,
    Kind,
)


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def sql_literal(text: str) -> str:
    """A Flink SQL string literal: quotes doubled, so any text is safe in generated SQL."""
    return "'" + text.replace("'", "''") + "'"


# genai-apm's Java functions (infra/udfs), registered by genai_apm.flink.env
JSON_TEXTS_FUNCTION = "GENAI_JSON_TEXTS"
TIMESTAMP_FUNCTION = "GENAI_TIMESTAMP"
NUMBER_FUNCTIONS = {
    Kind.LONG: ("GENAI_LONG", LONG_TEXT),
    Kind.DOUBLE: ("GENAI_DOUBLE", DOUBLE_TEXT),
}


@dataclass(frozen=True)
class FieldTexts:
    """A column holding GENAI_JSON_TEXTS(doc, names): every field's text from one parse.

    JSON_VALUE parses the whole document again for every call, and the checks below refer to
    each field's text several times: ~130 parses per record, ~3.5k records/s per core. Read
    from a column computed once, the same SQL runs at the speed of its regular expressions.
    """

    column: str
    names: tuple[str, ...]
    # number fields whose value sits in a column of its own (texts_view_sql): read from there
    numbers: tuple[str, ...] = ()

    @classmethod
    def of(cls, contract: Contract, column: str = "`texts`") -> FieldTexts:
        return cls(column, contract.names)

    def text(self, field: Field) -> str:
        return f"{self.column}[{self.names.index(field.name) + 1}]"

    @staticmethod
    def number(field: Field) -> str:
        return quote_ident(f"{field.name}$number")


def texts_view_sql(contract: Contract, relation: str, doc: str = "`doc`") -> tuple[str, FieldTexts]:
    """SELECT every column of ``relation``, its `texts` (one parse of ``doc``) and each number
    field's value (one conversion); with the FieldTexts whose checks read that view. The two
    functions are non-deterministic, so the planner keeps each projection apart and nothing
    is computed again per reference."""
    texts = FieldTexts.of(contract)
    number_fields = [f for f in contract.fields if f.kind in NUMBER_FUNCTIONS]
    numbers = "".join(f", {typed(f, texts)} AS {texts.number(f)}" for f in number_fields)
    sql = (
        f"SELECT *{numbers} FROM (SELECT *, {texts_sql(contract, doc)} AS {texts.column} "
        f"FROM {relation})"
    )
    return sql, replace(texts, numbers=tuple(f.name for f in number_fields))


def texts_sql(contract: Contract, doc: str) -> str:
    """The call whose result a FieldTexts column must hold."""
    return f"{JSON_TEXTS_FUNCTION}({doc}, '{','.join(contract.names)}')"


Doc = str | FieldTexts


def text_of(field: Field, doc: Doc) -> str:
    """The field as JSON text (NULL if absent, null, or an object/array).

    ``doc`` is a FieldTexts column, or a SQL expression of the document itself, which then
    costs one parse per reference (fine in a computed column that needs one field)."""
    if isinstance(doc, FieldTexts):
        return doc.text(field)
    return f"{JSON_TEXTS_FUNCTION}({doc}, '{field.name}')[1]"


def _timestamp(raw: str) -> str:
    # the algorithm is genai_apm.schemas.validate.timestamp_ms, in Java (ContractTimestamp);
    # the patterns and bounds travel from here so they are written once
    return (
        f"{TIMESTAMP_FUNCTION}({raw}, '{EPOCH_TEXT}', '{RFC3339_TEXT}', "
        f"CAST({MIN_TIMESTAMP_MS} AS BIGINT), CAST({MAX_TIMESTAMP_MS} AS BIGINT))"
    )


def typed(field: Field, doc: Doc) -> str:
    """SQL for the field's typed value: NULL when absent or not convertible."""
    raw = text_of(field, doc)
    match field.kind:
        case Kind.STRING:
            return raw
        case Kind.LONG | Kind.DOUBLE:
            if isinstance(doc, FieldTexts) and field.name in doc.numbers:
                return doc.number(field)
            # only whole numbers that fit count as longs (TRY_CAST('1.5' AS BIGINT) is 1)
            function, pattern = NUMBER_FUNCTIONS[field.kind]
            return f"{function}({raw}, '{pattern}')"
        case Kind.BOOLEAN:
            return f"CASE LOWER({raw}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
        case Kind.TIMESTAMP:
            return _timestamp(raw)
    raise AssertionError(field.kind)


def problem(field: Field, doc: Doc) -> str:
    """SQL yielding a short reason when the field breaks the contract, else NULL.

    At most one problem per field: the first that applies, in the order written here.
    """
    raw, value = text_of(field, doc), typed(field, doc)
    checks = []
    if field.required:
        checks.append(f"WHEN {raw} IS NULL THEN '{field.name}: required'")
    if field.kind is not Kind.STRING:
        checks.append(
            f"WHEN {raw} IS NOT NULL AND {value} IS NULL "
            f"THEN '{field.name}: not a valid {field.kind.value}'"
        )
    if field.kind is Kind.DOUBLE:
        # 1e400 is a valid JSON number that becomes Infinity; no metric of ours is infinite.
        # Checked before the minimum so -1e400 is "not finite" rather than "below 0".
        checks.append(
            f"WHEN ABS({value}) = CAST('Infinity' AS DOUBLE) THEN '{field.name}: not finite'"
        )
    if field.minimum is not None:
        checks.append(
            f"WHEN {value} < {field.minimum} THEN '{field.name}: below {field.minimum:g}'"
        )
    if field.allowed:
        options = ", ".join(sql_literal(a) for a in field.allowed)
        checks.append(
            f"WHEN {raw} NOT IN ({options}) "
            f"THEN '{field.name}: not one of {'|'.join(field.allowed)}'"
        )
    if not checks:
        return ""
    return "CASE " + " ".join(checks) + " END"


def newer_version(contract: Contract, doc: Doc) -> str:
    """SQL for the reason a record written for a later contract version is refused, else NULL.

    Its fields may have been renamed or retyped, so it is not judged by this version's rules.
    """
    field = contract.version_field
    if field is None:
        return "CAST(NULL AS STRING)"
    value = typed(field, doc)
    return (
        f"CASE WHEN {value} > {contract.version} THEN CONCAT('{field.name}: ', "
        f"CAST({value} AS STRING), ' is newer than supported v{contract.version}') END"
    )


def rejection_reason(contract: Contract, doc: Doc) -> str:
    """SQL for all the record's problems joined by '; ', or NULL if it honours the contract."""
    parts = [p for p in (problem(f, doc) for f in contract.fields) if p]
    newer = newer_version(contract, doc)
    texts = doc.column if isinstance(doc, FieldTexts) else texts_sql(contract, doc)
    return (
        f"CASE WHEN {texts} IS NULL THEN 'not a JSON object' "
        f"ELSE COALESCE({newer}, NULLIF(CONCAT_WS('; ', {', '.join(parts)}), '')) END"
    )


def typed_columns(contract: Contract, doc: Doc) -> list[str]:
    return [f"{typed(f, doc)} AS {quote_ident(f.name)}" for f in contract.fields]


def flink_type(kind: Kind) -> str:
    return {
        Kind.STRING: "STRING",
        Kind.LONG: "BIGINT",
        Kind.DOUBLE: "DOUBLE",
        Kind.BOOLEAN: "BOOLEAN",
        Kind.TIMESTAMP: "TIMESTAMP_LTZ(3)",
    }[kind]


def flink_columns(contract: Contract) -> list[tuple[str, str]]:
    """(name, Flink type) per field, in contract order: the column list of a sink's DDL."""
    return [(f.name, flink_type(f.kind)) for f in contract.fields]
