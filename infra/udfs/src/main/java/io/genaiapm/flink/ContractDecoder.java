package io.genaiapm.flink;

import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * A contract from schemas/ (sent as JSON by genai_apm.schemas.flink_format) and the one-pass
 * decoding of a record against it: every field's typed value, the rejection reason and the
 * event time, from a single parse.
 *
 * <p>The rules and reason texts are those of the generated SQL (schemas/flink_sql.py) and of
 * the Python reference validator (schemas/validate.py); tests/unit/test_validate_vs_flink.py
 * holds all three equal on hundreds of mutated payloads. Texts come from JsonTexts, numbers
 * from ContractNumber and timestamps from ContractTimestamp: the same code the SQL path calls.
 */
final class ContractDecoder implements Serializable {
  private static final long serialVersionUID = 1L;

  enum Kind {
    STRING,
    LONG,
    DOUBLE,
    BOOLEAN,
    TIMESTAMP
  }

  /** What one record decodes to. Timestamps are epoch milliseconds. */
  static final class Decoded {
    /** typed values in contract order (String, Long, Double, Boolean, Long ms); all null when
     * the record is not a JSON object */
    final Object[] values;
    /** null when the record honours the contract */
    final String reason;
    /** the event-time field's instant, null when absent or unusable */
    final Long eventMs;

    Decoded(Object[] values, String reason, Long eventMs) {
      this.values = values;
      this.reason = reason;
      this.eventMs = eventMs;
    }
  }

  static final String NOT_AN_OBJECT = "not a JSON object";

  final String name;
  final String[] names;
  final Kind[] kinds;
  private final boolean[] required;
  private final Double[] minimum;
  private final String[] minimumText;
  private final List<Set<String>> allowed;
  private final String[] allowedText;
  private final int versionField; // -1: the contract carries no version
  private final long version;
  final int eventTimeField;
  private final Pattern longPattern;
  private final Pattern doublePattern;
  private final Pattern epochPattern;
  private final Pattern rfc3339Pattern;
  private final long minMs;
  private final long maxMs;
  private final HashMap<String, Integer> index = new HashMap<>();

  ContractDecoder(String json) {
    JsonNode root;
    try {
      root = new ObjectMapper().readTree(json);
    } catch (Exception e) {
      throw new IllegalArgumentException("genai-contract.contract is not valid JSON: " + e, e);
    }
    name = root.path("name").asText();
    version = root.path("version").asLong();
    JsonNode fields = root.path("fields");
    int n = fields.size();
    names = new String[n];
    kinds = new Kind[n];
    required = new boolean[n];
    minimum = new Double[n];
    minimumText = new String[n];
    allowed = new ArrayList<>(n);
    allowedText = new String[n];
    for (int i = 0; i < n; i++) {
      JsonNode field = fields.get(i);
      names[i] = field.path("name").asText();
      kinds[i] = Kind.valueOf(field.path("kind").asText().toUpperCase(Locale.ROOT));
      required[i] = field.path("required").asBoolean();
      if (!field.path("minimum").isNull() && !field.path("minimum").isMissingNode()) {
        minimum[i] = field.path("minimum").asDouble();
        minimumText[i] = field.path("minimum_text").asText();
      }
      Set<String> options = new HashSet<>();
      List<String> ordered = new ArrayList<>();
      for (JsonNode option : field.path("allowed")) {
        options.add(option.asText());
        ordered.add(option.asText());
      }
      allowed.add(options);
      allowedText[i] = String.join("|", ordered);
      index.putIfAbsent(names[i], i);
    }
    versionField = position(root.path("version_field"));
    eventTimeField = position(root.path("event_time"));
    JsonNode patterns = root.path("patterns");
    longPattern = Pattern.compile(patterns.path("long").asText());
    doublePattern = Pattern.compile(patterns.path("double").asText());
    epochPattern = Pattern.compile(patterns.path("epoch").asText());
    rfc3339Pattern = Pattern.compile(patterns.path("rfc3339").asText());
    minMs = root.path("min_ms").asLong();
    maxMs = root.path("max_ms").asLong();
  }

  private int position(JsonNode fieldName) {
    if (fieldName.isNull() || fieldName.isMissingNode()) {
      return -1;
    }
    Integer at = index.get(fieldName.asText());
    if (at == null) {
      throw new IllegalArgumentException(
          "genai-contract: " + fieldName.asText() + " is not a field of " + name);
    }
    return at;
  }

  int field(String fieldName) {
    Integer at = index.get(fieldName);
    return at == null ? -1 : at;
  }

  /** The record as bytes (UTF-8 decoded as CAST(raw AS STRING) does: bad bytes become U+FFFD). */
  Decoded decode(byte[] message) {
    return decode(message == null ? null : new String(message, StandardCharsets.UTF_8));
  }

  Decoded decode(String doc) {
    int n = names.length;
    Object[] values = new Object[n];
    String[] texts = doc == null ? null : JsonTexts.texts(doc, index, n);
    if (texts == null) {
      return new Decoded(values, NOT_AN_OBJECT, null);
    }
    for (int i = 0; i < n; i++) {
      values[i] = texts[i] == null ? null : typed(kinds[i], texts[i]);
    }
    Long eventMs = eventTimeField < 0 ? null : (Long) values[eventTimeField];
    if (versionField >= 0) {
      Long seen = (Long) values[versionField];
      if (seen != null && seen > version) {
        // a later version may rename or retype fields: this version's rules do not apply
        String reason =
            names[versionField] + ": " + seen + " is newer than supported v" + version;
        return new Decoded(values, reason, eventMs);
      }
    }
    StringBuilder reason = null;
    for (int i = 0; i < n; i++) {
      String problem = problem(i, texts[i], values[i]);
      if (problem != null) {
        if (reason == null) {
          reason = new StringBuilder(problem);
        } else {
          reason.append("; ").append(problem);
        }
      }
    }
    return new Decoded(values, reason == null ? null : reason.toString(), eventMs);
  }

  private Object typed(Kind kind, String text) {
    switch (kind) {
      case STRING:
        return text;
      case LONG:
        return ContractNumber.toLong(text, longPattern);
      case DOUBLE:
        return ContractNumber.toDouble(text, doublePattern);
      case BOOLEAN:
        String lower = text.toLowerCase(Locale.ROOT);
        return lower.equals("true") ? Boolean.TRUE : lower.equals("false") ? Boolean.FALSE : null;
      case TIMESTAMP:
        return ContractTimestamp.millis(text, epochPattern, rfc3339Pattern, minMs, maxMs);
      default:
        throw new AssertionError(kind);
    }
  }

  /** The first rule the field breaks, in the order and words of flink_sql.problem. */
  private String problem(int i, String text, Object value) {
    if (required[i] && text == null) {
      return names[i] + ": required";
    }
    if (kinds[i] != Kind.STRING && text != null && value == null) {
      return names[i] + ": not a valid " + kinds[i].name().toLowerCase(Locale.ROOT);
    }
    if (kinds[i] == Kind.DOUBLE && value != null && ((Double) value).isInfinite()) {
      return names[i] + ": not finite";
    }
    if (minimum[i] != null && value != null && ((Number) value).doubleValue() < minimum[i]) {
      return names[i] + ": below " + minimumText[i];
    }
    if (!allowed.get(i).isEmpty() && text != null && !allowed.get(i).contains(text)) {
      return names[i] + ": not one of " + allowedText[i];
    }
    return null;
  }
}
