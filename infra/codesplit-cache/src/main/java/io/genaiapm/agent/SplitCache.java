package io.genaiapm.agent;

import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The splitter's earlier answers, one file per (max method length, max members, code) under
 * the agent's folder, named by their SHA-256. A hit touches the file (the Python side keeps
 * the most recently used, genai_apm/flink/codesplit_cache.py); a miss runs Flink's splitter and
 * writes its answer whole or not at all (parallel test JVMs share the folder).
 */
public final class SplitCache {
    private static volatile Path folder;
    private static volatile MethodHandle uncached;
    // the loader that defined the splitter, and which Flink it came from (a cached answer
    // belongs to one splitter: another Flink version may split differently)
    private static volatile ClassLoader splitterLoader;
    private static volatile String splitterSource = "";
    static final AtomicLong HITS = new AtomicLong();
    static final AtomicLong MISSES = new AtomicLong();

    private SplitCache() {}

    static void configure(Path dir) {
        folder = dir;
        Runtime.getRuntime()
                .addShutdownHook(
                        new Thread(
                                () -> {
                                    if (HITS.get() + MISSES.get() > 0) {
                                        System.err.println(
                                                "genai-apm code split cache: "
                                                        + HITS.get()
                                                        + " hits, "
                                                        + MISSES.get()
                                                        + " misses ("
                                                        + dir
                                                        + ")");
                                    }
                                }));
    }

    static void wrapped(ClassLoader loader, String source) {
        splitterLoader = loader;
        splitterSource = source;
    }

    /** Called in place of JavaCodeSplitter.split (same arguments, same answer). */
    public static String split(String code, int maxMethodLength, int maxClassMemberCount) {
        Path dir = folder;
        if (dir == null || code == null || code.isEmpty()) {
            return original(code, maxMethodLength, maxClassMemberCount);
        }
        Path file;
        try {
            String head = splitterSource + "/" + maxMethodLength + "/" + maxClassMemberCount;
            file = dir.resolve(key(head, code) + ".java");
            if (Files.isRegularFile(file)) {
                String answer = Files.readString(file, StandardCharsets.UTF_8);
                try {
                    Files.setLastModifiedTime(
                            file, FileTime.fromMillis(System.currentTimeMillis()));
                } catch (IOException e) {
                    // pruned meanwhile, or read-only: the answer read still holds
                }
                HITS.incrementAndGet();
                return answer;
            }
        } catch (IOException | RuntimeException e) {
            return original(code, maxMethodLength, maxClassMemberCount);
        }
        String answer = original(code, maxMethodLength, maxClassMemberCount);
        MISSES.incrementAndGet();
        try {
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, ".split", ".tmp");
            Files.writeString(tmp, answer, StandardCharsets.UTF_8);
            Files.move(
                    tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            // a cache that cannot be written costs the next run time, never this one its answer
        }
        return answer;
    }

    /** SHA-256 of what identifies an answer (``head``: which Flink, which limits) and the code. */
    static String key(String head, String code) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            sha.update((head + "/").getBytes(StandardCharsets.UTF_8));
            sha.update(code.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(sha.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String original(String code, int maxMethodLength, int maxClassMemberCount) {
        try {
            MethodHandle handle = uncached;
            if (handle == null) {
                handle =
                        CodeSplitCacheAgent.uncached(
                                splitterLoader,
                                CodeSplitCacheAgent.SPLITTER,
                                "split",
                                MethodType.methodType(
                                        String.class, String.class, int.class, int.class));
                uncached = handle;
            }
            return (String) handle.invokeExact(code, maxMethodLength, maxClassMemberCount);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new RuntimeException(t);
        }
    }
}
