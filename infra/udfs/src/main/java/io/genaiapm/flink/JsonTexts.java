package io.genaiapm.flink;

import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * GENAI_JSON_TEXTS(doc, 'f1,f2,...'): the named top-level fields of a JSON object as text, in
 * order, or NULL when doc is not a JSON object.
 *
 * <p>The text of a field is what Flink's JSON_VALUE gives for it, so the generated SQL and the
 * Python reference validator keep one meaning: strings as they are, true/false, numbers as
 * BigDecimal.toString of their literal (1.5e1 is "15", 1e2 is "1E+2"), NULL for null, objects
 * and arrays. Unlike JSON_VALUE, the document is parsed once for all fields. The
 * genai-contract source format (ContractDecoder) reads its texts with the same code.
 *
 * <p>Declared non-deterministic on purpose: the planner then never merges the projection
 * that computes it into the projections that read its elements, which would call it (and
 * parse the document) once per element reference.
 */
public class JsonTexts extends ScalarFunction {
  private static final JsonFactory FACTORY = new JsonFactory();
  // 'f1,f2,...' -> its layout, worked out once per distinct list
  private static final ConcurrentHashMap<String, Layout> LAYOUTS = new ConcurrentHashMap<>();

  /** How many texts a field list asks for, and each name's position among them. */
  private static final class Layout {
    final int size;
    final Map<String, Integer> index = new HashMap<>();

    Layout(String fields) {
      String[] names = fields.split(",", -1);
      size = names.length;
      for (int i = 0; i < names.length; i++) {
        index.putIfAbsent(names[i], i);
      }
    }
  }

  public @DataTypeHint("ARRAY<STRING>") String[] eval(String doc, String fields) {
    if (doc == null || fields == null) {
      return null;
    }
    Layout layout = LAYOUTS.computeIfAbsent(fields, Layout::new);
    return texts(doc, layout.index, layout.size);
  }

  /**
   * The texts of the fields ``index`` names (name -> position among ``size``), or null when doc
   * is not a JSON object. Shared with the genai-contract format (ContractDecoder).
   */
  static String[] texts(String doc, Map<String, Integer> index, int size) {
    String[] texts = new String[size];
    // One pass over the tokens, keeping only the wanted top-level values: building the whole
    // tree (readTree) was 11-15% of the analytics job's source thread (bench/flight.py).
    // Nested values are still read to their end (skipChildren), so a document that readTree
    // rejects is rejected here too; a repeated key keeps its last value, as in readTree.
    try (JsonParser parser = FACTORY.createParser(doc)) {
      if (parser.nextToken() != JsonToken.START_OBJECT) {
        return null;
      }
      JsonToken token;
      while ((token = parser.nextToken()) == JsonToken.FIELD_NAME) {
        Integer at = index.get(parser.currentName());
        JsonToken value = parser.nextToken();
        if (value == JsonToken.START_OBJECT || value == JsonToken.START_ARRAY) {
          parser.skipChildren();
          if (at != null) {
            texts[at] = null;
          }
        } else if (at != null) {
          texts[at] = text(parser, value);
        }
      }
      if (token != JsonToken.END_OBJECT) {
        return null;
      }
    } catch (Exception e) { // malformed: the caller reports "not a JSON object"
      return null;
    }
    return texts;
  }

  static String text(JsonParser parser, JsonToken token) throws java.io.IOException {
    switch (token) {
      case VALUE_STRING:
        return parser.getText();
      case VALUE_TRUE:
        return "true";
      case VALUE_FALSE:
        return "false";
      case VALUE_NUMBER_INT:
        return parser.getBigIntegerValue().toString();
      case VALUE_NUMBER_FLOAT:
        // the literal's exact decimal, as readTree with USE_BIG_DECIMAL_FOR_FLOATS gives it
        return parser.getDecimalValue().toString();
      default: // null
        return null;
    }
  }

  @Override
  public boolean isDeterministic() {
    return false;
  }
}
