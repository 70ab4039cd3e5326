package io.genaiapm.flink;

import java.io.IOException;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;

/**
 * One record in, one row out: the table's physical columns, each either a contract field
 * (typed), {@code reason}, {@code event_ts} or {@code raw} (see ContractFormatFactory). A
 * record that breaks the contract is still a row, with its reason, so it can become a dead
 * letter; a null record (a Kafka tombstone) is "not a JSON object", as under the raw format.
 */
public final class ContractDeserializationSchema implements DeserializationSchema<RowData> {
  private static final long serialVersionUID = 1L;

  /** Column codes beside field positions (>= 0). */
  static final int RAW = -1;

  static final int REASON = -2;
  static final int EVENT_TS = -3;

  static final String RAW_COLUMN = "raw";
  static final String REASON_COLUMN = "reason";
  static final String EVENT_TS_COLUMN = "event_ts";

  private final ContractDecoder decoder;
  private final int[] columns;
  private final TypeInformation<RowData> producedType;

  /** ``columnNames``: the table's physical columns, in order; the caller checked their types. */
  public ContractDeserializationSchema(
      String contractJson, String[] columnNames, TypeInformation<RowData> producedType) {
    this.decoder = new ContractDecoder(contractJson);
    this.columns = new int[columnNames.length];
    for (int j = 0; j < columnNames.length; j++) {
      columns[j] = code(decoder, columnNames[j]);
    }
    this.producedType = producedType;
  }

  static int code(ContractDecoder decoder, String column) {
    switch (column) {
      case RAW_COLUMN:
        return RAW;
      case REASON_COLUMN:
        return REASON;
      case EVENT_TS_COLUMN:
        return EVENT_TS;
      default:
        int at = decoder.field(column);
        if (at < 0) {
          throw new IllegalArgumentException(
              "genai-contract: column "
                  + column
                  + " is neither a field of "
                  + decoder.name
                  + " nor raw, reason or event_ts");
        }
        return at;
    }
  }

  @Override
  public RowData deserialize(byte[] message) throws IOException {
    ContractDecoder.Decoded decoded = decoder.decode(message);
    GenericRowData row = new GenericRowData(columns.length);
    for (int j = 0; j < columns.length; j++) {
      int code = columns[j];
      Object value;
      if (code == RAW) {
        value = message;
      } else if (code == REASON) {
        value = decoded.reason == null ? null : StringData.fromString(decoded.reason);
      } else if (code == EVENT_TS) {
        // the epoch for records without a usable event time: a NULL rowtime fails the
        // watermark operator, and the epoch never advances it (connectors/ddl.py)
        value = TimestampData.fromEpochMillis(decoded.eventMs == null ? 0L : decoded.eventMs);
      } else {
        value = internal(decoder.kinds[code], decoded.values[code]);
      }
      row.setField(j, value);
    }
    return row;
  }

  private static Object internal(ContractDecoder.Kind kind, Object value) {
    if (value == null) {
      return null;
    }
    switch (kind) {
      case STRING:
        return StringData.fromString((String) value);
      case TIMESTAMP:
        return TimestampData.fromEpochMillis((Long) value);
      default: // Long, Double, Boolean are their own internal form
        return value;
    }
  }

  @Override
  public boolean isEndOfStream(RowData nextElement) {
    return false;
  }

  @Override
  public TypeInformation<RowData> getProducedType() {
    return producedType;
  }
}
