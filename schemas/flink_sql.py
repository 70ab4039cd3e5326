"""Flink SQL generated from a contract: typed extraction from raw JSON plus a rejection reason.

Sources read the Kafka value as raw bytes, so a malformed record is still a row: it gets a
reason and goes to the dead-letter topic instead of failing the job or vanishing.
JSON_VALUE's RETURNING DOUBLE/BIGINT fails the *job* on a mistyped value (checked on Flink 2.2),
so every scalar is extracted as a string and converted with TRY_CAST, which yields NULL.
"""

from __future__ import annotations

from genai_apm.schemas.contract import Contract, Field, Kind

RFC3339 = "yyyy-MM-dd''T''HH:mm:ssXXX"
ZONE_SUFFIX = "([+-][0-9]{2}:[0-9]{2}|[zZ])$"


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _json_path(field: Field) -> str:
    return "'$.\"" + field.name + "\"'" if "." in field.name else f"'$.{field.name}'"


def text_of(field: Field, doc: str) -> str:
    """The field as JSON text (NULL if absent, null, or an object/array)."""
    return f"JSON_VALUE({doc}, {_json_path(field)})"


def typed(field: Field, doc: str) -> str:
    """SQL for the field's typed value: NULL when absent or not convertible."""
    raw = text_of(field, doc)
    match field.kind:
        case Kind.STRING:
            return raw
        case Kind.LONG:
            # TRY_CAST('1.5' AS BIGINT) is 1: only whole numbers that fit count as longs
            return f"CASE WHEN REGEXP({raw}, '^-?[0-9]{{1,18}}$') THEN CAST({raw} AS BIGINT) END"
        case Kind.DOUBLE:
            return f"TRY_CAST({raw} AS DOUBLE)"
        case Kind.BOOLEAN:
            return f"CASE LOWER({raw}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END"
        case Kind.TIMESTAMP:
            # digits: epoch milliseconds; otherwise RFC 3339, honouring its zone offset.
            # Java patterns cannot take a fraction of any width, so the seconds are parsed
            # without it and its first three digits are added back as milliseconds.
            whole = f"REGEXP_REPLACE({raw}, '[.][0-9]+', '')"
            millis = (
                f"COALESCE(TRY_CAST(RPAD(SUBSTR(REGEXP_EXTRACT({raw}, '[.]([0-9]+)', 1), "
                f"1, 3), 3, '0') AS INT), 0)"
            )
            zone = f"REGEXP_EXTRACT({raw}, '{ZONE_SUFFIX}', 1)"
            return (
                f"CASE WHEN REGEXP({raw}, '^[0-9]{{1,15}}$') "
                f"THEN TO_TIMESTAMP_LTZ(TRY_CAST({raw} AS BIGINT), 3) "
                f"ELSE TIMESTAMPADD(MILLISECOND, {millis}, "
                f"TO_TIMESTAMP_LTZ({whole}, '{RFC3339}', {zone})) END"
            )
    raise AssertionError(field.kind)


def problem(field: Field, doc: str) -> str:
    """SQL yielding a short reason when the field breaks the contract, else NULL."""
    raw, value = text_of(field, doc), typed(field, doc)
    checks = []
    if field.required:
        checks.append(f"WHEN {raw} IS NULL THEN '{field.name}: required'")
    if field.kind is not Kind.STRING:
        checks.append(
            f"WHEN {raw} IS NOT NULL AND {value} IS NULL "
            f"THEN '{field.name}: not a valid {field.kind.value}'"
        )
    if field.minimum is not None:
        checks.append(
            f"WHEN {value} < {field.minimum} THEN '{field.name}: below {field.minimum:g}'"
        )
    if field.kind is Kind.DOUBLE:
        # TRY_CAST turns 1e400 into Infinity; no metric of ours is legitimately infinite
        checks.append(
            f"WHEN ABS({value}) = CAST('Infinity' AS DOUBLE) THEN '{field.name}: not finite'"
        )
    if field.allowed:
        options = ", ".join(f"'{a}'" for a in field.allowed)
        checks.append(
            f"WHEN {raw} NOT IN ({options}) "
            f"THEN '{field.name}: not one of {'|'.join(field.allowed)}'"
        )
    if not checks:
        return ""
    return "CASE " + " ".join(checks) + " END"


def rejection_reason(contract: Contract, doc: str) -> str:
    """SQL for all the record's problems joined by '; ', or NULL if it honours the contract."""
    parts = [p for p in (problem(f, doc) for f in contract.fields) if p]
    return (
        f"CASE WHEN {doc} IS NULL OR NOT ({doc} IS JSON OBJECT) THEN 'not a JSON object' "
        f"ELSE NULLIF(CONCAT_WS('; ', {', '.join(parts)}), '') END"
    )


def typed_columns(contract: Contract, doc: str) -> list[str]:
    return [f"{typed(f, doc)} AS {quote_ident(f.name)}" for f in contract.fields]


def flink_type(kind: Kind) -> str:
    return {
        Kind.STRING: "STRING",
        Kind.LONG: "BIGINT",
        Kind.DOUBLE: "DOUBLE",
        Kind.BOOLEAN: "BOOLEAN",
        Kind.TIMESTAMP: "TIMESTAMP_LTZ(3)",
    }[kind]
