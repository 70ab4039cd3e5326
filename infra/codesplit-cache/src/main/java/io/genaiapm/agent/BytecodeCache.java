package io.genaiapm.agent;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.HashMap;
import java.util.Map;

import org.codehaus.janino.SimpleCompiler;

/**
 * Janino's bytecode for a generated class, kept by the SHA-256 of its source (and of which
 * Flink jar compiles it) in {@code <folder>/classes}. A hit defines the classes
 * from those bytes in a child of the caller's class loader, as Janino's own loader would; a
 * miss compiles with Janino as Flink does and keeps the bytes. Anything that goes wrong on the
 * way calls Flink's own method, so its errors stay Flink's.
 */
public final class BytecodeCache {
    private static volatile Path folder;
    private static volatile MethodHandle uncached;
    private static volatile ClassLoader compilerLoader;
    private static volatile String compilerSource = "";

    private BytecodeCache() {}

    static void configure(Path dir) {
        folder = dir;
    }

    static void wrapped(ClassLoader loader, String source) {
        compilerLoader = loader;
        compilerSource = source;
    }

    /** Called in place of CompileUtils.doCompile (same arguments, an equivalent class). */
    public static Class<?> doCompile(ClassLoader loader, String name, String code) {
        Path dir = folder;
        if (dir == null || loader == null || name == null || code == null) {
            return original(loader, name, code);
        }
        try {
            String key = SplitCache.key(compilerSource + "/" + name, code);
            Path file = dir.resolve(key + ".classes");
            if (Files.isRegularFile(file)) {
                Map<String, byte[]> classes = read(Files.readAllBytes(file));
                touch(file);
                return new Defined(loader, classes).loadClass(name);
            }
            SimpleCompiler compiler = new SimpleCompiler();
            compiler.setParentClassLoader(loader);
            compiler.cook(code);
            Class<?> compiled = compiler.getClassLoader().loadClass(name);
            write(dir, file, compiler.getBytecodes());
            return compiled;
        } catch (Throwable t) {
            // a source Janino refuses, a cache file cut short: Flink's own path, its own errors
            return original(loader, name, code);
        }
    }

    /** The classes of one compiled source, defined from their bytes under {@code parent}. */
    static final class Defined extends ClassLoader {
        private final Map<String, byte[]> classes;

        Defined(ClassLoader parent, Map<String, byte[]> classes) {
            super(parent);
            this.classes = classes;
        }

        @Override
        protected Class<?> findClass(String name) throws ClassNotFoundException {
            byte[] bytes = classes.get(name);
            if (bytes == null) {
                throw new ClassNotFoundException(name);
            }
            return defineClass(name, bytes, 0, bytes.length);
        }
    }

    static Map<String, byte[]> read(byte[] data) throws IOException {
        DataInputStream in = new DataInputStream(new ByteArrayInputStream(data));
        int count = in.readInt();
        Map<String, byte[]> classes = new HashMap<>();
        for (int i = 0; i < count; i++) {
            String name = in.readUTF();
            byte[] bytes = new byte[in.readInt()];
            in.readFully(bytes);
            classes.put(name, bytes);
        }
        return classes;
    }

    private static void write(Path dir, Path file, Map<String, byte[]> classes) {
        try {
            ByteArrayOutputStream buffer = new ByteArrayOutputStream();
            DataOutputStream out = new DataOutputStream(buffer);
            out.writeInt(classes.size());
            for (Map.Entry<String, byte[]> c : classes.entrySet()) {
                out.writeUTF(c.getKey());
                out.writeInt(c.getValue().length);
                out.write(c.getValue());
            }
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, ".classes", ".tmp");
            Files.write(tmp, buffer.toByteArray());
            Files.move(
                    tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException | RuntimeException e) {
            // a cache that cannot be written costs the next run time, never this one its class
        }
    }

    private static void touch(Path file) {
        try {
            Files.setLastModifiedTime(file, FileTime.fromMillis(System.currentTimeMillis()));
        } catch (IOException e) {
            // pruned meanwhile, or read-only: the bytes read still hold
        }
    }

    private static Class<?> original(ClassLoader loader, String name, String code) {
        try {
            MethodHandle handle = uncached;
            if (handle == null) {
                handle =
                        CodeSplitCacheAgent.uncached(
                                compilerLoader,
                                CodeSplitCacheAgent.COMPILER,
                                "doCompile",
                                MethodType.methodType(
                                        Class.class,
                                        ClassLoader.class,
                                        String.class,
                                        String.class));
                uncached = handle;
            }
            return (Class<?>) handle.invokeExact(loader, name, code);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new RuntimeException(t);
        }
    }
}
