package io.genaiapm.flink;

import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * GENAI_LONG(text, pattern) and GENAI_DOUBLE(text, pattern): a contract number's value, or
 * NULL when the whole text does not match the contract's pattern (LONG_TEXT, DOUBLE_TEXT in
 * schemas/contract.py) or does not fit. The same result as the SQL it replaces,
 * {@code CASE WHEN REGEXP(text, '^pattern\z') THEN TRY_CAST(text AS ...) END}, which
 * tests/unit/test_validate_vs_flink.py holds against the Python validator.
 *
 * <p>Declared non-deterministic on purpose (as JsonTexts): the projection computing a value
 * then stays below the checks that read it three or four times (present, finite, minimum,
 * the column itself), so each text is matched and converted once per record, not per
 * reference.
 */
public final class ContractNumber {
  private static final ConcurrentHashMap<String, Pattern> PATTERNS = new ConcurrentHashMap<>();

  private ContractNumber() {}

  private static Pattern pattern(String regex) {
    return PATTERNS.computeIfAbsent(regex, Pattern::compile);
  }

  /** The long a text denotes under the contract's pattern, or null (shared with the format). */
  static java.lang.Long toLong(String text, Pattern pattern) {
    if (!pattern.matcher(text).matches()) {
      return null;
    }
    try {
      return java.lang.Long.parseLong(text);
    } catch (NumberFormatException e) { // beyond the BIGINT range: TRY_CAST's NULL
      return null;
    }
  }

  /** The double a text denotes under the contract's pattern, or null (shared with the format). */
  static java.lang.Double toDouble(String text, Pattern pattern) {
    return pattern.matcher(text).matches() ? java.lang.Double.parseDouble(text) : null;
  }

  /** GENAI_LONG: a whole number of the contract that fits a BIGINT. */
  public static class Long extends ScalarFunction {
    public @DataTypeHint("BIGINT") java.lang.Long eval(String text, String pattern) {
      return text == null ? null : toLong(text, pattern(pattern));
    }

    @Override
    public boolean isDeterministic() {
      return false;
    }
  }

  /** GENAI_DOUBLE: a decimal number of the contract (1e400 is Infinity, as CAST makes it). */
  public static class Double extends ScalarFunction {
    public @DataTypeHint("DOUBLE") java.lang.Double eval(String text, String pattern) {
      return text == null ? null : toDouble(text, pattern(pattern));
    }

    @Override
    public boolean isDeterministic() {
      return false;
    }
  }
}
