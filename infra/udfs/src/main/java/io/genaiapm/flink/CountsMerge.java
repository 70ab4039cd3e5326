package io.genaiapm.flink;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * GENAI_COUNTS_MERGE(m MULTISET&lt;STRING&gt;): element counts summed over the rows, e.g. to roll
 * per-minute `error_types` up to the model, the fleet or a sliding window. NULL multisets are
 * ignored; no row gives an empty multiset. Its inputs are already-aggregated rows, so the
 * accumulator is a plain HashMap, kept as a RAW value (no conversion per row).
 */
@FunctionHint(
    accumulator = @DataTypeHint(value = "RAW", bridgedTo = CountsMerge.Counts.class, rawSerializer = CountsMerge.Serializer.class),
    output = @DataTypeHint("MULTISET<STRING>"))
public class CountsMerge extends AggregateFunction<Map<String, Integer>, CountsMerge.Counts> {

  /** Element -> count; the accumulator. */
  public static final class Counts extends HashMap<String, Integer> {
    private static final long serialVersionUID = 1L;
  }

  @Override
  public Counts createAccumulator() {
    return new Counts();
  }

  public void accumulate(Counts acc, @DataTypeHint("MULTISET<STRING>") Map<String, Integer> m) {
    if (m != null) {
      add(acc, m);
    }
  }

  public void merge(Counts acc, Iterable<Counts> others) {
    for (Counts other : others) {
      add(acc, other);
    }
  }

  private static void add(Counts acc, Map<String, Integer> m) {
    for (Map.Entry<String, Integer> e : m.entrySet()) {
      if (e.getValue() != null) {
        acc.merge(e.getKey(), e.getValue(), Integer::sum);
      }
    }
  }

  @Override
  public Map<String, Integer> getValue(Counts acc) {
    return new HashMap<>(acc); // the accumulator lives on after a HOP window fires
  }

  /** Writes size, then per element a null flag, the element and its count. */
  public static final class Serializer extends StatelessSerializer<Counts> {
    private static final long serialVersionUID = 1L;

    @Override
    public Counts createInstance() {
      return new Counts();
    }

    @Override
    public Counts copy(Counts from) {
      Counts c = new Counts();
      c.putAll(from);
      return c;
    }

    @Override
    public void serialize(Counts c, DataOutputView out) throws IOException {
      out.writeInt(c.size());
      for (Map.Entry<String, Integer> e : c.entrySet()) {
        out.writeBoolean(e.getKey() != null);
        if (e.getKey() != null) {
          out.writeUTF(e.getKey());
        }
        out.writeInt(e.getValue());
      }
    }

    @Override
    public Counts deserialize(DataInputView in) throws IOException {
      int n = in.readInt();
      Counts c = new Counts();
      for (int i = 0; i < n; i++) {
        String key = in.readBoolean() ? in.readUTF() : null;
        c.put(key, in.readInt());
      }
      return c;
    }

    @Override
    public TypeSerializerSnapshot<Counts> snapshotConfiguration() {
      return new Snapshot();
    }
  }

  /** Restores {@link Serializer} from savepoints (it has no configuration). */
  public static final class Snapshot extends SimpleTypeSerializerSnapshot<Counts> {
    public Snapshot() {
      super(Serializer::new);
    }
  }
}
