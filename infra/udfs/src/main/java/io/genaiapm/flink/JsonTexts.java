package io.genaiapm.flink;

import java.math.BigDecimal;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.DeserializationFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.JsonNodeFactory;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * GENAI_JSON_TEXTS(doc, 'f1,f2,...'): the named top-level fields of a JSON object as text, in
 * order, or NULL when doc is not a JSON object.
 *
 * <p>The text of a field is what Flink's JSON_VALUE gives for it, so the generated SQL and the
 * Python reference validator keep one meaning: strings as they are, true/false, numbers as
 * BigDecimal.toString of their literal (1.5e1 is "15", 1e2 is "1E+2"), NULL for null, objects
 * and arrays. Unlike JSON_VALUE, the document is parsed once for all fields.
 *
 * <p>Declared non-deterministic on purpose: the planner then never merges the projection
 * that computes it into the projections that read its elements, which would call it (and
 * parse the document) once per element reference.
 */
public class JsonTexts extends ScalarFunction {
  private static final ObjectMapper MAPPER =
      new ObjectMapper()
          .enable(DeserializationFeature.USE_BIG_DECIMAL_FOR_FLOATS)
          .setNodeFactory(JsonNodeFactory.withExactBigDecimals(true));
  private static final ConcurrentHashMap<String, String[]> FIELD_LISTS =
      new ConcurrentHashMap<>();

  public @DataTypeHint("ARRAY<STRING>") String[] eval(String doc, String fields) {
    if (doc == null || fields == null) {
      return null;
    }
    JsonNode root;
    try {
      root = MAPPER.readTree(doc);
    } catch (Exception e) { // malformed: the caller reports "not a JSON object"
      return null;
    }
    if (root == null || !root.isObject()) {
      return null;
    }
    String[] names = FIELD_LISTS.computeIfAbsent(fields, f -> f.split(",", -1));
    String[] texts = new String[names.length];
    for (int i = 0; i < names.length; i++) {
      texts[i] = text(root.get(names[i]));
    }
    return texts;
  }

  static String text(JsonNode node) {
    if (node == null || node.isNull() || node.isContainerNode()) {
      return null;
    }
    if (node.isTextual()) {
      return node.textValue();
    }
    if (node.isBoolean()) {
      return node.booleanValue() ? "true" : "false";
    }
    if (node.isNumber()) {
      if (node.isIntegralNumber()) {
        return node.bigIntegerValue().toString();
      }
      BigDecimal value = node.decimalValue();
      return value.toString();
    }
    return node.asText();
  }

  @Override
  public boolean isDeterministic() {
    return false;
  }
}
