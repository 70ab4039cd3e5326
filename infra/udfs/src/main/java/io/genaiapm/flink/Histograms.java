package io.genaiapm.flink;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.MapData;
import org.apache.flink.table.functions.AggregateFunction;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * Mergeable log-bucketed (DDSketch-style) histograms as MAP&lt;INT, BIGINT&gt; (bucket index ->
 * count). Bucket i holds values in (gamma^(i-1), gamma^i]; values below 0.001 share the
 * bucket of 0.001; gamma = (1 + a) / (1 - a) for the relative error a. docs/latency-rollups.md
 * states the rules; genai_apm/jobs/latency.py has their Python twins (bucket_index,
 * histogram_quantiles), which tests/unit/test_histogram_functions.py holds against these.
 *
 * <p>Maps are read and written in Flink's internal form (MapData, ArrayData) and the
 * aggregations keep a {@link Hist} as a RAW accumulator, so nothing is boxed or converted per
 * record.
 */
public final class Histograms {
  private Histograms() {}

  /**
   * The bucket of {@code value}: the same double arithmetic as the SQL it replaces,
   * CAST(CEIL(LN(GREATEST(v, 0.001)) / log_gamma) AS INT), so buckets stay equal to
   * existing outputs.
   */
  public static int bucket(double value, double logGamma) {
    return (int) Math.ceil(Math.log(Math.max(value, 0.001)) / logGamma);
  }

  /** The estimate of bucket i: within the relative error a of any value in it. */
  public static double estimate(int bucket, double gamma) {
    return 2 * Math.pow(gamma, bucket) / (gamma + 1);
  }

  /**
   * GENAI_HIST(value DOUBLE, log_gamma DOUBLE): the histogram of the non-NULL finite values.
   */
  @FunctionHint(
      accumulator = @DataTypeHint(value = "RAW", bridgedTo = Hist.class, rawSerializer = Hist.Serializer.class),
      output = @DataTypeHint(value = "MAP<INT, BIGINT>", bridgedTo = MapData.class))
  public static class Build extends AggregateFunction<MapData, Hist> {
    @Override
    public Hist createAccumulator() {
      return new Hist();
    }

    public void accumulate(Hist acc, Double value, Double logGamma) {
      // NaN and infinities (which the contract rejects) have no bucket: (int) casts would
      // put them at 0 and Integer.MAX_VALUE
      if (value != null && Double.isFinite(value)) {
        acc.add(bucket(value, logGamma), 1);
      }
    }

    public void merge(Hist acc, Iterable<Hist> others) {
      for (Hist other : others) {
        acc.addAll(other);
      }
    }

    @Override
    public MapData getValue(Hist acc) {
      return acc.toMapData(); // empty, not NULL, when no value came
    }
  }

  /**
   * GENAI_HIST_MERGE(h MAP&lt;INT, BIGINT&gt;): counts summed per bucket; NULL maps, NULL
   * entries and counts &lt;= 0 ignored.
   */
  @FunctionHint(
      accumulator = @DataTypeHint(value = "RAW", bridgedTo = Hist.class, rawSerializer = Hist.Serializer.class),
      output = @DataTypeHint(value = "MAP<INT, BIGINT>", bridgedTo = MapData.class))
  public static class Merge extends AggregateFunction<MapData, Hist> {
    @Override
    public Hist createAccumulator() {
      return new Hist();
    }

    public void accumulate(
        Hist acc, @DataTypeHint(value = "MAP<INT, BIGINT>", bridgedTo = MapData.class) MapData h) {
      if (h == null) {
        return;
      }
      ArrayData keys = h.keyArray();
      ArrayData counts = h.valueArray();
      for (int i = 0; i < h.size(); i++) {
        if (!keys.isNullAt(i) && !counts.isNullAt(i)) {
          acc.add(keys.getInt(i), counts.getLong(i)); // counts <= 0 are ignored
        }
      }
    }

    public void merge(Hist acc, Iterable<Hist> others) {
      for (Hist other : others) {
        acc.addAll(other);
      }
    }

    @Override
    public MapData getValue(Hist acc) {
      return acc.toMapData();
    }
  }

  /**
   * Quantiles of a histogram, interpolated as numpy's default and DuckDB's quantile_cont: for
   * n values and 0-based rank r = p (n - 1), v(lo) + (r - lo) (v(hi) - v(lo)) with lo =
   * floor(r), hi = ceil(r) and v(k) the estimate of the bucket holding the k-th smallest
   * value. Each v(k) is within a of max(k-th value, 0.001), so the result is within a of the
   * exact interpolated quantile of the values raised to 0.001. NULL for an empty or NULL
   * histogram or a NULL p.
   */
  static Double[] quantiles(MapData h, double[] ps, double gamma) {
    Double[] out = new Double[ps.length];
    if (h == null || h.size() == 0) {
      return out;
    }
    ArrayData keyData = h.keyArray();
    ArrayData countData = h.valueArray();
    int m = 0;
    int[] keys = new int[h.size()];
    long[] counts = new long[h.size()];
    boolean sorted = true;
    for (int i = 0; i < h.size(); i++) {
      if (keyData.isNullAt(i) || countData.isNullAt(i) || countData.getLong(i) <= 0) {
        continue;
      }
      keys[m] = keyData.getInt(i);
      counts[m] = countData.getLong(i);
      sorted &= m == 0 || keys[m - 1] < keys[m];
      m++;
    }
    if (m == 0) {
      return out;
    }
    if (!sorted) { // GENAI_HIST writes ascending buckets; maps from elsewhere may not be
      long[] packed = new long[m];
      for (int j = 0; j < m; j++) {
        packed[j] = ((long) keys[j] << 32) | j;
      }
      Arrays.sort(packed);
      int[] k2 = new int[m];
      long[] c2 = new long[m];
      for (int j = 0; j < m; j++) {
        int from = (int) packed[j];
        k2[j] = keys[from];
        c2[j] = counts[from];
      }
      keys = k2;
      counts = c2;
    }
    // cumulative[j]: how many values lie in buckets 0..j; a binary search finds any rank
    long[] cumulative = new long[m];
    long n = 0;
    for (int j = 0; j < m; j++) {
      n += counts[j];
      cumulative[j] = n;
    }
    for (int q = 0; q < ps.length; q++) {
      double p = ps[q];
      if (Double.isNaN(p)) {
        continue; // a NULL p
      }
      if (p < 0 || p > 1) {
        throw new IllegalArgumentException("GENAI_HIST_QUANTILES: p must be in [0, 1], got " + p);
      }
      double rank = p * (n - 1);
      long lo = (long) Math.floor(rank);
      long hi = (long) Math.ceil(rank);
      double low = estimate(keys[holding(cumulative, m, lo)], gamma);
      double high = hi == lo ? low : estimate(keys[holding(cumulative, m, hi)], gamma);
      out[q] = low + (rank - lo) * (high - low);
    }
    return out;
  }

  /** The first bucket whose cumulative count exceeds the 0-based rank. */
  private static int holding(long[] cumulative, int m, long rank) {
    int lo = 0;
    int hi = m - 1;
    while (lo < hi) {
      int mid = (lo + hi) >>> 1;
      if (cumulative[mid] > rank) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  }

  /** GENAI_HIST_QUANTILES(h, ps ARRAY&lt;DOUBLE&gt;, gamma): one quantile per p, in order. */
  public static class Quantiles extends ScalarFunction {
    public @DataTypeHint("ARRAY<DOUBLE>") Double[] eval(
        @DataTypeHint(value = "MAP<INT, BIGINT>", bridgedTo = MapData.class) MapData h,
        @DataTypeHint(value = "ARRAY<DOUBLE>", bridgedTo = ArrayData.class) ArrayData ps,
        Double gamma) {
      if (ps == null || gamma == null) {
        return null;
      }
      double[] values = new double[ps.size()];
      for (int i = 0; i < values.length; i++) {
        values[i] = ps.isNullAt(i) ? Double.NaN : ps.getDouble(i);
      }
      return quantiles(h, values, gamma);
    }
  }

  /** GENAI_HIST_QUANTILE(h, p, gamma): one quantile, as GENAI_HIST_QUANTILES. */
  public static class Quantile extends ScalarFunction {
    public @DataTypeHint("DOUBLE") Double eval(
        @DataTypeHint(value = "MAP<INT, BIGINT>", bridgedTo = MapData.class) MapData h,
        Double p,
        Double gamma) {
      if (p == null || gamma == null) {
        return null;
      }
      return quantiles(h, new double[] {p}, gamma)[0];
    }
  }

  /**
   * GENAI_HIST_MULTISET(h): bucket index as its decimal string -> count, what
   * COLLECT(CAST(bucket AS STRING)) gives for the same values.
   */
  public static class Multiset extends ScalarFunction {
    public @DataTypeHint("MULTISET<STRING>") Map<String, Integer> eval(
        @DataTypeHint(value = "MAP<INT, BIGINT>", bridgedTo = MapData.class) MapData h) {
      if (h == null) {
        return null;
      }
      ArrayData keys = h.keyArray();
      ArrayData counts = h.valueArray();
      Map<String, Integer> out = new HashMap<>(h.size() * 2);
      for (int i = 0; i < h.size(); i++) {
        if (!keys.isNullAt(i) && !counts.isNullAt(i) && counts.getLong(i) > 0) {
          out.merge(Integer.toString(keys.getInt(i)), (int) counts.getLong(i), Integer::sum);
        }
      }
      return out;
    }
  }
}
