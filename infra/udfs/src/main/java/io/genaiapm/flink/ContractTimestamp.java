package io.genaiapm.flink;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.LocalDate;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Pattern;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * GENAI_TIMESTAMP(text, epochPattern, rfc3339Pattern, minMs, maxMs): the instant a contract
 * timestamp denotes, or NULL. The patterns and bounds come from schemas/contract.py; this is
 * the same algorithm as genai_apm.schemas.validate.timestamp_ms, which the tests compare.
 *
 * <p>Up to 15 digits are epoch milliseconds; otherwise an RFC 3339 date-time with a mandatory
 * offset and a fraction of any width (its first three digits count). Impossible dates
 * (2026-02-30, year 0) and instants outside [minMs, maxMs] are NULL.
 */
public class ContractTimestamp extends ScalarFunction {
  private static final ConcurrentHashMap<String, Pattern> PATTERNS = new ConcurrentHashMap<>();
  private static final long DAY_MS = 86_400_000L;

  public @DataTypeHint("TIMESTAMP_LTZ(3)") Instant eval(
      String raw, String epochPattern, String rfcPattern, Long minMs, Long maxMs) {
    if (raw == null) {
      return null;
    }
    Long ms = millis(raw, pattern(epochPattern), pattern(rfcPattern), minMs, maxMs);
    return ms == null ? null : Instant.ofEpochMilli(ms);
  }

  /** The algorithm itself, shared with the genai-contract format (ContractDecoder). */
  static Long millis(String raw, Pattern epoch, Pattern rfc, long minMs, long maxMs) {
    if (epoch.matcher(raw).matches()) {
      long ms = Long.parseLong(raw);
      return ms <= maxMs ? ms : null;
    }
    if (!rfc.matcher(raw).matches()) {
      return null;
    }
    int year = Integer.parseInt(raw.substring(0, 4));
    LocalDate day;
    try {
      if (year < 1) {
        return null;
      }
      day =
          LocalDate.of(
              year, Integer.parseInt(raw.substring(5, 7)), Integer.parseInt(raw.substring(8, 10)));
    } catch (DateTimeException e) {
      return null;
    }
    long seconds =
        Integer.parseInt(raw.substring(11, 13)) * 3600L
            + Integer.parseInt(raw.substring(14, 16)) * 60L
            + Integer.parseInt(raw.substring(17, 19));
    int position = 19;
    long millis = 0;
    if (raw.charAt(position) == '.') {
      int end = position + 1;
      while (end < raw.length() && Character.isDigit(raw.charAt(end))) {
        end++;
      }
      String digits = raw.substring(position + 1, end);
      String three = (digits.length() >= 3 ? digits.substring(0, 3) : digits + "000".substring(digits.length()));
      millis = Integer.parseInt(three);
      position = end;
    }
    String zone = raw.substring(position);
    long offset = 0;
    char sign = zone.charAt(0);
    if (sign == '+' || sign == '-') {
      offset =
          (Integer.parseInt(zone.substring(1, 3)) * 3600L
                  + Integer.parseInt(zone.substring(4, 6)) * 60L)
              * (sign == '+' ? 1 : -1);
    }
    long ms = day.toEpochDay() * DAY_MS + (seconds - offset) * 1000L + millis;
    return ms >= minMs && ms <= maxMs ? ms : null;
  }

  private static Pattern pattern(String regex) {
    return PATTERNS.computeIfAbsent(regex, Pattern::compile);
  }
}
