import io.genaiapm.flink.Hist;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.HashMap;
import java.util.Random;

/**
 * The accumulator alone, outside Flink: GENAI_HIST's Hist (a dense array of counts) against a
 * boxed HashMap&lt;Integer, Long&gt;, on the buckets of lognormal latencies (about 150 distinct
 * per histogram), as CPU nanoseconds per value (this thread's CPU time: the machine is
 * shared). `python bench/histograms.py --accumulators` runs it with the classpath it needs.
 */
public class HistAccumulators {
  static final int VALUES_PER_HIST = 300; // a key's values in one minute
  static final int HISTS = 20_000;

  public static void main(String[] args) {
    double logGamma = Math.log(1.01 / 0.99);
    Random rng = new Random(16);
    int[] buckets = new int[VALUES_PER_HIST * 64];
    for (int i = 0; i < buckets.length; i++) {
      double v = Math.exp(7 + rng.nextGaussian());
      buckets[i] = (int) Math.ceil(Math.log(Math.max(v, 0.001)) / logGamma);
    }
    ThreadMXBean cpu = ManagementFactory.getThreadMXBean();
    long sink = 0;
    for (int round = 0; round < 8; round++) { // the first rounds warm the JIT up
      long t0 = cpu.getCurrentThreadCpuTime();
      for (int h = 0; h < HISTS; h++) {
        Hist acc = new Hist();
        int from = (h * 131) % (buckets.length - VALUES_PER_HIST);
        for (int i = 0; i < VALUES_PER_HIST; i++) {
          acc.add(buckets[from + i], 1);
        }
        sink += acc.size();
      }
      long t1 = cpu.getCurrentThreadCpuTime();
      for (int h = 0; h < HISTS; h++) {
        HashMap<Integer, Long> acc = new HashMap<>();
        int from = (h * 131) % (buckets.length - VALUES_PER_HIST);
        for (int i = 0; i < VALUES_PER_HIST; i++) {
          acc.merge(buckets[from + i], 1L, Long::sum);
        }
        sink += acc.size();
      }
      long t2 = cpu.getCurrentThreadCpuTime();
      double n = (double) HISTS * VALUES_PER_HIST;
      System.out.printf(
          "round %d: Hist %.1f ns/value, HashMap<Integer, Long> %.1f ns/value%n",
          round, (t1 - t0) / n, (t2 - t1) / n);
    }
    System.out.println("distinct buckets per histogram: " + sink / (16L * HISTS));
  }
}
