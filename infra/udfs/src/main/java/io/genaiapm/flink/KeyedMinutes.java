package io.genaiapm.flink;

import java.io.IOException;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Supplier;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.ArrayData;
import org.apache.flink.table.data.GenericArrayData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.binary.BinaryStringData;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * The finer keys of the one per-minute aggregation (jobs/minutes.py), inside it.
 *
 * <p>GENAI_USER_MINUTES and GENAI_SESSION_MINUTES are aggregate functions of the model x app
 * minute whose accumulator is a map from a finer key (user x feature, session) to its sums:
 * a call costs a hash lookup and a few additions in the aggregation that reads it anyway,
 * where a second and third window aggregation over the calls each copied every call into
 * their own buffers, combined and shuffled it (`make profile JOB=all`: 22% and 10% of the
 * source task's samples at 5,000 calls per event-time second). Each returns the minute's
 * rows of its key as an array that a CROSS JOIN UNNEST turns back into rows, which keep
 * the minute's rowtime for cascaded windows. Every column has the null rules of the SQL
 * aggregate it replaces (SUM of no value is NULL, COUNT is never NULL, GENAI_HIST of no
 * value is an empty map): tests/unit/test_keyed_minutes.py compares them with Python.
 */
public final class KeyedMinutes {
  private KeyedMinutes() {}

  /** Two strings as a map key; a probe instance is reused for lookups, copies are stored. */
  static final class Key {
    StringData a;
    StringData b;
    int hash;

    Key set(StringData a, StringData b) {
      this.a = a;
      this.b = b;
      this.hash = 31 * a.hashCode() + (b == null ? 0 : b.hashCode());
      return this;
    }

    /** A stored key: the input strings may point into a buffer that Flink reuses. */
    Key copy() {
      return new Key().set(copy(a), b == null ? null : copy(b));
    }

    private static StringData copy(StringData s) {
      return s instanceof BinaryStringData ? ((BinaryStringData) s).copy() : s;
    }

    @Override
    public int hashCode() {
      return hash;
    }

    @Override
    public boolean equals(Object o) {
      if (!(o instanceof Key)) {
        return false;
      }
      Key k = (Key) o;
      return hash == k.hash && a.equals(k.a) && (b == null ? k.b == null : b.equals(k.b));
    }
  }

  static void writeString(StringData s, DataOutputView out) throws IOException {
    byte[] bytes = s.toBytes();
    out.writeInt(bytes.length);
    out.write(bytes);
  }

  static StringData readString(DataInputView in) throws IOException {
    byte[] bytes = new byte[in.readInt()];
    in.readFully(bytes);
    return StringData.fromBytes(bytes);
  }

  static Long orNull(long value, boolean present) {
    return present ? value : null;
  }

  /** A finer key's sums: what a map of them merges. */
  interface Sums<V> {
    void merge(V other);
  }

  /** A minute's rows of one finer key, found or inserted through a reused probe key. */
  static class KeyedRows<V extends Sums<V>> {
    final HashMap<Key, V> rows = new HashMap<>();
    private final Key probe = new Key();
    private final Supplier<V> create;

    KeyedRows(Supplier<V> create) {
      this.create = create;
    }

    V get(StringData a, StringData b) {
      V v = rows.get(probe.set(a, b));
      if (v == null) {
        v = create.get();
        rows.put(probe.copy(), v);
      }
      return v;
    }

    /** Adds ``other``'s rows; its stored keys are immutable copies, so they are shared. */
    void merge(KeyedRows<V> other) {
      for (Map.Entry<Key, V> e : other.rows.entrySet()) {
        V mine = rows.get(e.getKey());
        if (mine == null) {
          mine = create.get();
          rows.put(e.getKey(), mine);
        }
        mine.merge(e.getValue());
      }
    }
  }

  // -- users --------------------------------------------------------------------------------

  /** One user x feature's minute: the columns of minute_users (jobs/minutes.USER_COLUMNS). */
  static final class User implements Sums<User> {
    long requests;
    long okRequests;
    long inputSum;
    long inputN; // calls with input tokens: input_tokens_sum is NULL without any
    long outputSum;
    long outputN;
    long cacheRead;
    long cacheWrite;
    long priced;
    double cost;
    long unpricedTokens;
    long unpricedN; // unpriced calls: unpriced_tokens is NULL without any
    double latencyMax = Double.NaN; // NaN: no successful call's latency yet
    long okInputSum;
    long okInputN;
    long okInputMax;
    long okOutputSum;
    long okOutputN;
    long okOutputMax;
    Hist latency;
    Hist okInput;
    Hist okOutput;

    @Override
    public void merge(User o) {
      requests += o.requests;
      okRequests += o.okRequests;
      inputSum += o.inputSum;
      inputN += o.inputN;
      outputSum += o.outputSum;
      outputN += o.outputN;
      cacheRead += o.cacheRead;
      cacheWrite += o.cacheWrite;
      priced += o.priced;
      cost += o.cost;
      unpricedTokens += o.unpricedTokens;
      unpricedN += o.unpricedN;
      if (!Double.isNaN(o.latencyMax)
          && (Double.isNaN(latencyMax) || o.latencyMax > latencyMax)) {
        latencyMax = o.latencyMax;
      }
      if (o.okInputN > 0) {
        okInputMax = okInputN == 0 ? o.okInputMax : Math.max(okInputMax, o.okInputMax);
      }
      okInputSum += o.okInputSum;
      okInputN += o.okInputN;
      if (o.okOutputN > 0) {
        okOutputMax = okOutputN == 0 ? o.okOutputMax : Math.max(okOutputMax, o.okOutputMax);
      }
      okOutputSum += o.okOutputSum;
      okOutputN += o.okOutputN;
      latency = mergeHist(latency, o.latency);
      okInput = mergeHist(okInput, o.okInput);
      okOutput = mergeHist(okOutput, o.okOutput);
    }

    GenericRowData row(Key key) {
      GenericRowData r = new GenericRowData(21);
      r.setField(0, key.a);
      r.setField(1, key.b);
      r.setField(2, requests);
      r.setField(3, okRequests);
      r.setField(4, orNull(inputSum, inputN > 0));
      r.setField(5, orNull(outputSum, outputN > 0));
      r.setField(6, cacheRead);
      r.setField(7, cacheWrite);
      r.setField(8, priced);
      r.setField(9, priced > 0 ? cost : null);
      r.setField(10, orNull(unpricedTokens, unpricedN > 0));
      r.setField(11, Double.isNaN(latencyMax) ? null : latencyMax);
      r.setField(12, orNull(okInputSum, okInputN > 0));
      r.setField(13, okInputN);
      r.setField(14, orNull(okInputMax, okInputN > 0));
      r.setField(15, orNull(okOutputSum, okOutputN > 0));
      r.setField(16, okOutputN);
      r.setField(17, orNull(okOutputMax, okOutputN > 0));
      r.setField(18, histMap(latency));
      r.setField(19, histMap(okInput));
      r.setField(20, histMap(okOutput));
      return r;
    }

    void write(DataOutputView out) throws IOException {
      // in the order read() reads them
      out.writeLong(requests);
      out.writeLong(okRequests);
      out.writeLong(inputSum);
      out.writeLong(inputN);
      out.writeLong(outputSum);
      out.writeLong(outputN);
      out.writeLong(cacheRead);
      out.writeLong(cacheWrite);
      out.writeLong(priced);
      out.writeLong(unpricedTokens);
      out.writeLong(unpricedN);
      out.writeLong(okInputSum);
      out.writeLong(okInputN);
      out.writeLong(okInputMax);
      out.writeLong(okOutputSum);
      out.writeLong(okOutputN);
      out.writeLong(okOutputMax);
      out.writeDouble(cost);
      out.writeDouble(latencyMax);
      writeHist(latency, out);
      writeHist(okInput, out);
      writeHist(okOutput, out);
    }

    static User read(DataInputView in) throws IOException {
      User u = new User();
      u.requests = in.readLong();
      u.okRequests = in.readLong();
      u.inputSum = in.readLong();
      u.inputN = in.readLong();
      u.outputSum = in.readLong();
      u.outputN = in.readLong();
      u.cacheRead = in.readLong();
      u.cacheWrite = in.readLong();
      u.priced = in.readLong();
      u.unpricedTokens = in.readLong();
      u.unpricedN = in.readLong();
      u.okInputSum = in.readLong();
      u.okInputN = in.readLong();
      u.okInputMax = in.readLong();
      u.okOutputSum = in.readLong();
      u.okOutputN = in.readLong();
      u.okOutputMax = in.readLong();
      u.cost = in.readDouble();
      u.latencyMax = in.readDouble();
      u.latency = readHist(in);
      u.okInput = readHist(in);
      u.okOutput = readHist(in);
      return u;
    }
  }

  private static final Hist.Serializer HISTS = new Hist.Serializer();

  static Hist mergeHist(Hist into, Hist from) {
    if (from == null) {
      return into;
    }
    if (into == null) {
      into = new Hist();
    }
    into.addAll(from);
    return into;
  }

  static Object histMap(Hist h) {
    return (h == null ? new Hist() : h).toMapData(); // empty, not NULL, as GENAI_HIST
  }

  static void writeHist(Hist h, DataOutputView out) throws IOException {
    out.writeBoolean(h != null);
    if (h != null) {
      HISTS.serialize(h, out);
    }
  }

  static Hist readHist(DataInputView in) throws IOException {
    return in.readBoolean() ? HISTS.deserialize(in) : null;
  }

  static Hist add(Hist h, Double value, double logGamma) {
    if (value == null || !Double.isFinite(value)) {
      return h; // as GENAI_HIST: NULL, NaN and infinities have no bucket
    }
    if (h == null) {
      h = new Hist();
    }
    h.add(Histograms.bucket(value, logGamma), 1);
    return h;
  }

  /** The map of a minute's user x feature rows. */
  public static final class Users extends KeyedRows<User> {
    public Users() {
      super(User::new);
    }
  }

  /**
   * GENAI_USER_MINUTES(user_id, feature, ok, input_tokens, output_tokens, cache_read_tokens,
   * cache_write_tokens, cost_usd, ok_latency_ms, log_gamma): one row per user x feature with
   * the minute_users columns.
   */
  @FunctionHint(
      accumulator =
          @DataTypeHint(
              value = "RAW",
              bridgedTo = Users.class,
              rawSerializer = UsersSerializer.class),
      output =
          @DataTypeHint(
              value =
                  "ARRAY<ROW<user_id STRING NOT NULL, feature STRING NOT NULL,"
                      + " requests BIGINT NOT NULL, ok_requests BIGINT NOT NULL,"
                      + " input_tokens_sum BIGINT, output_tokens_sum BIGINT,"
                      + " cache_read_tokens_sum BIGINT NOT NULL,"
                      + " cache_write_tokens_sum BIGINT NOT NULL,"
                      + " priced_requests BIGINT NOT NULL, cost_usd DOUBLE,"
                      + " unpriced_tokens BIGINT, latency_max_ms DOUBLE,"
                      + " ok_input_tokens_sum BIGINT, ok_input_tokens_n BIGINT NOT NULL,"
                      + " ok_input_tokens_max BIGINT, ok_output_tokens_sum BIGINT,"
                      + " ok_output_tokens_n BIGINT NOT NULL, ok_output_tokens_max BIGINT,"
                      + " latency_h MAP<INT, BIGINT>, ok_input_tokens_h MAP<INT, BIGINT>,"
                      + " ok_output_tokens_h MAP<INT, BIGINT>> NOT NULL>",
              bridgedTo = ArrayData.class))
  public static class UserMinutes extends AggregateFunction<ArrayData, Users> {
    @Override
    public Users createAccumulator() {
      return new Users();
    }

    public void accumulate(
        Users acc,
        @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData user,
        @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData feature,
        Boolean ok,
        Long input,
        Long output,
        Long cacheRead,
        Long cacheWrite,
        Double cost,
        Double okLatency,
        Double logGamma) {
      User u = acc.get(user, feature);
      boolean success = Boolean.TRUE.equals(ok);
      u.requests++;
      if (input != null) {
        u.inputSum += input;
        u.inputN++;
      }
      if (output != null) {
        u.outputSum += output;
        u.outputN++;
      }
      u.cacheRead += cacheRead == null ? 0 : cacheRead;
      u.cacheWrite += cacheWrite == null ? 0 : cacheWrite;
      if (cost != null) {
        u.priced++;
        u.cost += cost;
      } else {
        u.unpricedN++;
        u.unpricedTokens += (input == null ? 0 : input) + (output == null ? 0 : output);
      }
      if (okLatency != null && (Double.isNaN(u.latencyMax) || okLatency > u.latencyMax)) {
        u.latencyMax = okLatency;
      }
      u.latency = add(u.latency, okLatency, logGamma);
      if (success) {
        u.okRequests++;
        if (input != null) {
          u.okInputMax = u.okInputN == 0 ? input : Math.max(u.okInputMax, input);
          u.okInputSum += input;
          u.okInputN++;
          u.okInput = add(u.okInput, (double) input, logGamma);
        }
        if (output != null) {
          u.okOutputMax = u.okOutputN == 0 ? output : Math.max(u.okOutputMax, output);
          u.okOutputSum += output;
          u.okOutputN++;
          u.okOutput = add(u.okOutput, (double) output, logGamma);
        }
      }
    }

    public void merge(Users acc, Iterable<Users> others) {
      for (Users other : others) {
        acc.merge(other);
      }
    }

    @Override
    public ArrayData getValue(Users acc) {
      Object[] rows = new Object[acc.rows.size()];
      int i = 0;
      for (Map.Entry<Key, User> e : acc.rows.entrySet()) {
        rows[i++] = e.getValue().row(e.getKey());
      }
      return new GenericArrayData(rows);
    }
  }

  /** Writes the occupied keys and their sums (and histograms) only. */
  public static final class UsersSerializer extends StatelessSerializer<Users> {
    @Override
    public Users createInstance() {
      return new Users();
    }

    @Override
    public Users copy(Users from) {
      Users to = new Users();
      to.merge(from);
      return to;
    }

    @Override
    public void serialize(Users acc, DataOutputView out) throws IOException {
      out.writeInt(acc.rows.size());
      for (Map.Entry<Key, User> e : acc.rows.entrySet()) {
        writeString(e.getKey().a, out);
        writeString(e.getKey().b, out);
        e.getValue().write(out);
      }
    }

    @Override
    public Users deserialize(DataInputView in) throws IOException {
      int n = in.readInt();
      Users acc = new Users();
      for (int i = 0; i < n; i++) {
        Key key = new Key().set(readString(in), readString(in));
        acc.rows.put(key, User.read(in));
      }
      return acc;
    }

    @Override
    public TypeSerializerSnapshot<Users> snapshotConfiguration() {
      return new UsersSnapshot();
    }
  }

  /** Restores {@link UsersSerializer} from savepoints (it has no configuration). */
  public static final class UsersSnapshot extends SimpleTypeSerializerSnapshot<Users> {
    public UsersSnapshot() {
      super(UsersSerializer::new);
    }
  }

  // -- sessions -----------------------------------------------------------------------------

  /** One session's minute: what per-session spend sums (jobs/cost.py). */
  static final class Session implements Sums<Session> {
    long requests;
    long priced;
    long input;
    long output;
    long cacheRead;
    long cacheWrite;
    long unpricedTokens;
    double cost;

    @Override
    public void merge(Session o) {
      requests += o.requests;
      priced += o.priced;
      input += o.input;
      output += o.output;
      cacheRead += o.cacheRead;
      cacheWrite += o.cacheWrite;
      unpricedTokens += o.unpricedTokens;
      cost += o.cost;
    }
  }

  /** The map of a minute's session rows. */
  public static final class Sessions extends KeyedRows<Session> {
    public Sessions() {
      super(Session::new);
    }
  }

  /**
   * GENAI_SESSION_MINUTES(session, input_tokens, output_tokens, cache_read_tokens,
   * cache_write_tokens, cost_usd): one row per session with counts and sums (missing token
   * counts as 0, as per-session spend reports them; cost_usd NULL when no call was priced).
   */
  @FunctionHint(
      accumulator =
          @DataTypeHint(
              value = "RAW",
              bridgedTo = Sessions.class,
              rawSerializer = SessionsSerializer.class),
      output =
          @DataTypeHint(
              value =
                  "ARRAY<ROW<session STRING NOT NULL, requests BIGINT NOT NULL,"
                      + " priced_requests BIGINT NOT NULL, input_tokens BIGINT NOT NULL,"
                      + " output_tokens BIGINT NOT NULL, cache_read_tokens BIGINT NOT NULL,"
                      + " cache_write_tokens BIGINT NOT NULL, unpriced_tokens BIGINT NOT NULL,"
                      + " cost_usd DOUBLE> NOT NULL>",
              bridgedTo = ArrayData.class))
  public static class SessionMinutes extends AggregateFunction<ArrayData, Sessions> {
    @Override
    public Sessions createAccumulator() {
      return new Sessions();
    }

    public void accumulate(
        Sessions acc,
        @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData session,
        Long input,
        Long output,
        Long cacheRead,
        Long cacheWrite,
        Double cost) {
      Session s = acc.get(session, null);
      long in = input == null ? 0 : input;
      long out = output == null ? 0 : output;
      s.requests++;
      s.input += in;
      s.output += out;
      s.cacheRead += cacheRead == null ? 0 : cacheRead;
      s.cacheWrite += cacheWrite == null ? 0 : cacheWrite;
      if (cost != null) {
        s.priced++;
        s.cost += cost;
      } else {
        s.unpricedTokens += in + out;
      }
    }

    public void merge(Sessions acc, Iterable<Sessions> others) {
      for (Sessions other : others) {
        acc.merge(other);
      }
    }

    @Override
    public ArrayData getValue(Sessions acc) {
      Object[] rows = new Object[acc.rows.size()];
      int i = 0;
      for (Map.Entry<Key, Session> e : acc.rows.entrySet()) {
        Session s = e.getValue();
        rows[i++] =
            GenericRowData.of(
                e.getKey().a,
                s.requests,
                s.priced,
                s.input,
                s.output,
                s.cacheRead,
                s.cacheWrite,
                s.unpricedTokens,
                s.priced > 0 ? s.cost : null);
      }
      return new GenericArrayData(rows);
    }
  }

  /** Writes each session's key and sums. */
  public static final class SessionsSerializer extends StatelessSerializer<Sessions> {
    @Override
    public Sessions createInstance() {
      return new Sessions();
    }

    @Override
    public Sessions copy(Sessions from) {
      Sessions to = new Sessions();
      to.merge(from);
      return to;
    }

    @Override
    public void serialize(Sessions acc, DataOutputView out) throws IOException {
      out.writeInt(acc.rows.size());
      for (Map.Entry<Key, Session> e : acc.rows.entrySet()) {
        Session s = e.getValue();
        writeString(e.getKey().a, out);
        out.writeLong(s.requests); // in the order deserialize() reads them
        out.writeLong(s.priced);
        out.writeLong(s.input);
        out.writeLong(s.output);
        out.writeLong(s.cacheRead);
        out.writeLong(s.cacheWrite);
        out.writeLong(s.unpricedTokens);
        out.writeDouble(s.cost);
      }
    }

    @Override
    public Sessions deserialize(DataInputView in) throws IOException {
      int n = in.readInt();
      Sessions acc = new Sessions();
      for (int i = 0; i < n; i++) {
        Key key = new Key().set(readString(in), null);
        Session s = new Session();
        s.requests = in.readLong();
        s.priced = in.readLong();
        s.input = in.readLong();
        s.output = in.readLong();
        s.cacheRead = in.readLong();
        s.cacheWrite = in.readLong();
        s.unpricedTokens = in.readLong();
        s.cost = in.readDouble();
        acc.rows.put(key, s);
      }
      return acc;
    }

    @Override
    public TypeSerializerSnapshot<Sessions> snapshotConfiguration() {
      return new SessionsSnapshot();
    }
  }

  /** Restores {@link SessionsSerializer} from savepoints (it has no configuration). */
  public static final class SessionsSnapshot extends SimpleTypeSerializerSnapshot<Sessions> {
    public SessionsSnapshot() {
      super(SessionsSerializer::new);
    }
  }
}
