package io.genaiapm.bridge;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.Iterator;
import java.util.Map;
import java.util.Properties;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The bridge's settings as flat properties.
 *
 * <p>Locally `genai-apm bridge kinesis` writes them to a file and passes {@code --config FILE}.
 * On Managed Flink there are no arguments: the keys come from the property group
 * {@value #GROUP} of /etc/flink/application_properties.json (the application's
 * EnvironmentProperties), the same keys as the file.
 */
final class BridgeConfig {
    static final String GROUP = "genai_apm.bridge";
    static final Path MANAGED_FLINK_PROPERTIES = Paths.get("/etc/flink/application_properties.json");

    private final Properties props;

    private BridgeConfig(Properties props) {
        this.props = props;
    }

    static BridgeConfig load(String[] args) throws IOException {
        Properties props = new Properties();
        if (args.length == 2 && args[0].equals("--config")) {
            try (Reader r = Files.newBufferedReader(Paths.get(args[1]), StandardCharsets.UTF_8)) {
                props.load(r);
            }
        } else if (args.length == 0 && Files.isRegularFile(MANAGED_FLINK_PROPERTIES)) {
            try (InputStream in = Files.newInputStream(MANAGED_FLINK_PROPERTIES)) {
                for (JsonNode group : new ObjectMapper().readTree(in)) {
                    if (!GROUP.equals(group.path("PropertyGroupId").asText())) {
                        continue;
                    }
                    Iterator<Map.Entry<String, JsonNode>> it = group.path("PropertyMap").fields();
                    while (it.hasNext()) {
                        Map.Entry<String, JsonNode> e = it.next();
                        props.setProperty(e.getKey(), e.getValue().asText());
                    }
                }
            }
        } else {
            throw new BridgeError(
                    "usage: KinesisBridge --config FILE (or, on Managed Flink, the property group "
                            + GROUP + ")");
        }
        return new BridgeConfig(props);
    }

    String required(String key) {
        String value = props.getProperty(key, "").trim();
        if (value.isEmpty()) {
            throw new BridgeError("bridge setting " + key + " is missing");
        }
        return value;
    }

    String optional(String key, String fallback) {
        String value = props.getProperty(key, "").trim();
        return value.isEmpty() ? fallback : value;
    }

    long number(String key, long fallback) {
        String value = optional(key, null);
        if (value == null) {
            return fallback;
        }
        try {
            return Long.parseLong(value);
        } catch (NumberFormatException e) {
            throw new BridgeError("bridge setting " + key + " must be a whole number, not " + value);
        }
    }

    /** Keys under {@code prefix}, prefix removed: passed through to a connector as-is. */
    Properties withPrefix(String prefix) {
        Properties out = new Properties();
        for (String key : props.stringPropertyNames()) {
            if (key.startsWith(prefix)) {
                out.setProperty(key.substring(prefix.length()), props.getProperty(key));
            }
        }
        return out;
    }

    /** A bad setting: main prints its message as one line and exits non-zero. */
    static final class BridgeError extends RuntimeException {
        BridgeError(String message) {
            super(message);
        }
    }
}
