package io.genaiapm.flink;

import java.io.IOException;
import java.util.Arrays;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializer;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.table.data.MapData;
import org.apache.flink.table.data.binary.BinaryArrayData;
import org.apache.flink.table.data.binary.BinaryMapData;

/**
 * A log-bucketed histogram: bucket index -> count, the accumulator of GENAI_HIST and
 * GENAI_HIST_MERGE.
 *
 * <p>Open addressing over two primitive arrays (a slot is empty while its count is 0), so an
 * insertion boxes nothing and a per-minute histogram of ~100 buckets takes ~2.5 KB, not the
 * ~10 KB of a HashMap&lt;Integer, Long&gt;. It travels as a RAW value with its own serializer
 * (below): the generated aggregation code then hands this very object to accumulate/merge
 * without converting it to or from Flink's internal data structures, and only the occupied
 * buckets are written to the network and to state.
 */
public final class Hist {
  private static final int MIN_CAPACITY = 16;

  private int[] keys;
  private long[] counts;
  private int size;
  private int mask;

  public Hist() {
    this(MIN_CAPACITY);
  }

  private Hist(int capacity) {
    keys = new int[capacity];
    counts = new long[capacity];
    mask = capacity - 1;
  }

  /** A table large enough for {@code n} buckets without growing (load <= 1/2). */
  static Hist withRoomFor(int n) {
    return new Hist(Math.max(MIN_CAPACITY, Integer.highestOneBit(Math.max(1, n) * 2 - 1) << 1));
  }

  private static int slot(int key, int mask) {
    return (key * 0x9E3779B9) >>> 7 & mask; // consecutive buckets spread over the table
  }

  public void add(int key, long n) {
    int i = slot(key, mask);
    while (counts[i] != 0) {
      if (keys[i] == key) {
        counts[i] += n;
        return;
      }
      i = (i + 1) & mask;
    }
    keys[i] = key;
    counts[i] = n;
    if (++size * 2 > keys.length) {
      grow();
    }
  }

  public void addAll(Hist other) {
    int[] k = other.keys;
    long[] c = other.counts;
    for (int i = 0; i < k.length; i++) {
      if (c[i] != 0) {
        add(k[i], c[i]);
      }
    }
  }

  private void grow() {
    int[] oldKeys = keys;
    long[] oldCounts = counts;
    keys = new int[oldKeys.length * 2];
    counts = new long[oldKeys.length * 2];
    mask = keys.length - 1;
    for (int j = 0; j < oldKeys.length; j++) {
      if (oldCounts[j] != 0) {
        int i = slot(oldKeys[j], mask);
        while (counts[i] != 0) {
          i = (i + 1) & mask;
        }
        keys[i] = oldKeys[j];
        counts[i] = oldCounts[j];
      }
    }
  }

  public int size() {
    return size;
  }

  /** The histogram as MAP&lt;INT, BIGINT&gt; in Flink's binary form, buckets in ascending order. */
  public MapData toMapData() {
    int[] sortedKeys = new int[size];
    int n = 0;
    for (int i = 0; i < keys.length; i++) {
      if (counts[i] != 0) {
        sortedKeys[n++] = keys[i];
      }
    }
    Arrays.sort(sortedKeys);
    long[] values = new long[size];
    for (int j = 0; j < size; j++) {
      values[j] = count(sortedKeys[j]);
    }
    return BinaryMapData.valueOf(
        BinaryArrayData.fromPrimitiveArray(sortedKeys), BinaryArrayData.fromPrimitiveArray(values));
  }

  private long count(int key) {
    int i = slot(key, mask);
    while (keys[i] != key) {
      i = (i + 1) & mask;
    }
    return counts[i];
  }

  Hist copy() {
    Hist h = new Hist(keys.length);
    System.arraycopy(keys, 0, h.keys, 0, keys.length);
    System.arraycopy(counts, 0, h.counts, 0, counts.length);
    h.size = size;
    return h;
  }

  /** Writes the occupied buckets only: (size, then key and count per bucket). */
  public static final class Serializer extends TypeSerializer<Hist> {
    private static final long serialVersionUID = 1L;

    @Override
    public boolean isImmutableType() {
      return false;
    }

    @Override
    public TypeSerializer<Hist> duplicate() {
      return this; // stateless
    }

    @Override
    public Hist createInstance() {
      return new Hist();
    }

    @Override
    public Hist copy(Hist from) {
      return from.copy();
    }

    @Override
    public Hist copy(Hist from, Hist reuse) {
      return from.copy();
    }

    @Override
    public int getLength() {
      return -1;
    }

    @Override
    public void serialize(Hist h, DataOutputView out) throws IOException {
      out.writeInt(h.size);
      for (int i = 0; i < h.keys.length; i++) {
        if (h.counts[i] != 0) {
          out.writeInt(h.keys[i]);
          out.writeLong(h.counts[i]);
        }
      }
    }

    @Override
    public Hist deserialize(DataInputView in) throws IOException {
      int n = in.readInt();
      Hist h = withRoomFor(n);
      for (int j = 0; j < n; j++) {
        h.add(in.readInt(), in.readLong());
      }
      return h;
    }

    @Override
    public Hist deserialize(Hist reuse, DataInputView in) throws IOException {
      return deserialize(in);
    }

    @Override
    public void copy(DataInputView in, DataOutputView out) throws IOException {
      int n = in.readInt();
      out.writeInt(n);
      out.write(in, n * 12);
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Serializer;
    }

    @Override
    public int hashCode() {
      return Serializer.class.hashCode();
    }

    @Override
    public TypeSerializerSnapshot<Hist> snapshotConfiguration() {
      return new Snapshot();
    }
  }

  /** Restores {@link Serializer} from savepoints (it has no configuration). */
  public static final class Snapshot extends SimpleTypeSerializerSnapshot<Hist> {
    public Snapshot() {
      super(Serializer::new);
    }
  }
}
