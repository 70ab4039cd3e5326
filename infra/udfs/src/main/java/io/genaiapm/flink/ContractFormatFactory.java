package io.genaiapm.flink;

import java.util.Collections;
import java.util.List;
import java.util.Set;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;

/**
 * {@code 'format' = 'genai-contract'}: decode a record once against a contract of schemas/,
 * yielding every field typed, the rejection reason and the event time as physical columns.
 *
 * <p>{@code 'genai-contract.contract'} carries the contract as JSON (written by
 * genai_apm.schemas.flink_format from the one definition in schemas/). Each physical column
 * is a contract field of the matching type, {@code reason} STRING (NULL when the record honours
 * the contract), {@code event_ts} TIMESTAMP_LTZ(3) (the contract's event-time field, the epoch
 * when unusable; declare the watermark on it) or {@code raw} BYTES (the record, for dead
 * letters). Before this format, sources read raw bytes and the same work took two JSON scans and
 * a few hundred SQL expressions per record.
 */
public final class ContractFormatFactory implements DeserializationFormatFactory {
  public static final String IDENTIFIER = "genai-contract";

  public static final ConfigOption<String> CONTRACT =
      ConfigOptions.key("contract")
          .stringType()
          .noDefaultValue()
          .withDescription("the contract as JSON (genai_apm.schemas.flink_format)");

  @Override
  public DecodingFormat<DeserializationSchema<RowData>> createDecodingFormat(
      DynamicTableFactory.Context context, ReadableConfig formatOptions) {
    FactoryUtil.validateFactoryOptions(this, formatOptions);
    String contract = formatOptions.get(CONTRACT);
    ContractDecoder decoder;
    try {
      decoder = new ContractDecoder(contract);
    } catch (IllegalArgumentException e) {
      throw new ValidationException(e.getMessage(), e);
    }
    return new DecodingFormat<DeserializationSchema<RowData>>() {
      @Override
      public DeserializationSchema<RowData> createRuntimeDecoder(
          DynamicTableSource.Context sourceContext, DataType physicalDataType) {
        RowType rowType = (RowType) physicalDataType.getLogicalType();
        List<String> names = rowType.getFieldNames();
        for (int j = 0; j < names.size(); j++) {
          check(decoder, names.get(j), rowType.getTypeAt(j));
        }
        TypeInformation<RowData> type = sourceContext.createTypeInformation(physicalDataType);
        return new ContractDeserializationSchema(contract, names.toArray(new String[0]), type);
      }

      @Override
      public ChangelogMode getChangelogMode() {
        return ChangelogMode.insertOnly();
      }
    };
  }

  /** A clear error at planning time for a column the format cannot fill. */
  private static void check(ContractDecoder decoder, String column, LogicalType type) {
    int code;
    try {
      code = ContractDeserializationSchema.code(decoder, column);
    } catch (IllegalArgumentException e) {
      throw new ValidationException(e.getMessage(), e);
    }
    LogicalTypeRoot want;
    if (code == ContractDeserializationSchema.RAW) {
      want = LogicalTypeRoot.VARBINARY;
    } else if (code == ContractDeserializationSchema.REASON) {
      want = LogicalTypeRoot.VARCHAR;
    } else if (code == ContractDeserializationSchema.EVENT_TS) {
      want = LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE;
    } else {
      switch (decoder.kinds[code]) {
        case STRING:
          want = LogicalTypeRoot.VARCHAR;
          break;
        case LONG:
          want = LogicalTypeRoot.BIGINT;
          break;
        case DOUBLE:
          want = LogicalTypeRoot.DOUBLE;
          break;
        case BOOLEAN:
          want = LogicalTypeRoot.BOOLEAN;
          break;
        default:
          want = LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE;
      }
    }
    if (type.getTypeRoot() != want) {
      throw new ValidationException(
          "genai-contract: column " + column + " must be " + want + ", not " + type);
    }
  }

  @Override
  public String factoryIdentifier() {
    return IDENTIFIER;
  }

  @Override
  public Set<ConfigOption<?>> requiredOptions() {
    return Set.of(CONTRACT);
  }

  @Override
  public Set<ConfigOption<?>> optionalOptions() {
    return Collections.emptySet();
  }
}
