package io.genaiapm.agent;

import java.lang.instrument.ClassFileTransformer;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.lang.instrument.Instrumentation;
import java.nio.file.Path;
import java.security.ProtectionDomain;
import java.util.Map;

import org.apache.flink.shaded.asm9.org.objectweb.asm.ClassReader;
import org.apache.flink.shaded.asm9.org.objectweb.asm.ClassVisitor;
import org.apache.flink.shaded.asm9.org.objectweb.asm.ClassWriter;
import org.apache.flink.shaded.asm9.org.objectweb.asm.MethodVisitor;
import org.apache.flink.shaded.asm9.org.objectweb.asm.Opcodes;
import org.apache.flink.shaded.asm9.org.objectweb.asm.Type;

/**
 * {@code -javaagent:genai-apm-codesplit-cache.jar=<folder>}: two pure, slow steps of Flink's
 * table planner answered from a folder of earlier answers.
 *
 * <ul>
 *   <li>{@code JavaCodeSplitter.split}: every class the planner generates is parsed and
 *       rewritten with an ANTLR Java grammar when it is created (GeneratedClass's constructor):
 *       about four fifths of a cached plan's submission (bench/startup.py). See {@link
 *       SplitCache}.
 *   <li>{@code CompileUtils.doCompile}: Janino compiles each generated class, once for the
 *       JobMaster (it builds the job graph from the operators' classes) and again in the
 *       tasks (another class loader). See {@link BytecodeCache}.
 * </ul>
 *
 * <p>When such a class is loaded, the agent renames the original method to {@code
 * <name>$uncached} and puts in its place one that asks the cache (which calls the original on a
 * miss). Anything unexpected leaves the class as Flink wrote it: the caches only ever save
 * time.
 */
public final class CodeSplitCacheAgent {
    static final String SPLITTER = "org/apache/flink/table/codesplit/JavaCodeSplitter";
    static final String COMPILER = "org/apache/flink/table/runtime/generated/CompileUtils";
    static final String UNCACHED = "$uncached";

    /** class -> {method, descriptor, the cache class with the same static method}. */
    static final Map<String, String[]> TARGETS =
            Map.of(
                    SPLITTER,
                    new String[] {
                        "split",
                        "(Ljava/lang/String;II)Ljava/lang/String;",
                        "io/genaiapm/agent/SplitCache"
                    },
                    COMPILER,
                    new String[] {
                        "doCompile",
                        "(Ljava/lang/ClassLoader;Ljava/lang/String;Ljava/lang/String;)"
                                + "Ljava/lang/Class;",
                        "io/genaiapm/agent/BytecodeCache"
                    });

    private CodeSplitCacheAgent() {}

    /** The original of a wrapped method ({@code <method>$uncached}), as {@link #wrap} left it. */
    static MethodHandle uncached(ClassLoader loader, String owner, String method, MethodType type)
            throws ReflectiveOperationException {
        Class<?> wrapped = Class.forName(owner.replace('/', '.'), true, loader);
        return MethodHandles.publicLookup().findStatic(wrapped, method + UNCACHED, type);
    }

    public static void premain(String folder, Instrumentation instrumentation) {
        if (folder == null || folder.isEmpty()) {
            return;
        }
        SplitCache.configure(Path.of(folder));
        BytecodeCache.configure(Path.of(folder).resolve("classes"));
        instrumentation.addTransformer(new Transformer());
    }

    static final class Transformer implements ClassFileTransformer {
        @Override
        public byte[] transform(
                ClassLoader loader,
                String className,
                Class<?> redefined,
                ProtectionDomain domain,
                byte[] bytes) {
            String[] target = TARGETS.get(className);
            if (target == null || redefined != null) {
                return null;
            }
            try {
                byte[] wrapped = wrap(bytes, target[0], target[1], target[2]);
                String source =
                        domain != null && domain.getCodeSource() != null
                                ? String.valueOf(domain.getCodeSource().getLocation())
                                : "";
                if (className.equals(SPLITTER)) {
                    SplitCache.wrapped(loader, source);
                } else {
                    BytecodeCache.wrapped(loader, source);
                }
                return wrapped;
            } catch (Throwable t) {
                System.err.println("genai-apm start-up cache: " + className + " left as is: " + t);
                return null;
            }
        }
    }

    /**
     * The class with {@code method} renamed to {@code method$uncached} (made public, so the
     * cache can call it) and a new {@code method} of the same access that returns {@code
     * cache.method(same arguments)}.
     */
    static byte[] wrap(byte[] original, String method, String descriptor, String cache) {
        ClassReader reader = new ClassReader(original);
        ClassWriter writer = new ClassWriter(reader, ClassWriter.COMPUTE_MAXS);
        int[] access = {-1};
        reader.accept(
                new ClassVisitor(Opcodes.ASM9, writer) {
                    @Override
                    public MethodVisitor visitMethod(
                            int acc, String name, String desc, String sig, String[] exc) {
                        if (method.equals(name) && descriptor.equals(desc)) {
                            access[0] = acc;
                            int open = (acc & ~(Opcodes.ACC_PRIVATE | Opcodes.ACC_PROTECTED))
                                    | Opcodes.ACC_PUBLIC;
                            return super.visitMethod(open, name + UNCACHED, desc, sig, exc);
                        }
                        return super.visitMethod(acc, name, desc, sig, exc);
                    }

                    @Override
                    public void visitEnd() {
                        if (access[0] != -1 && (access[0] & Opcodes.ACC_STATIC) != 0) {
                            MethodVisitor mv =
                                    super.visitMethod(access[0], method, descriptor, null, null);
                            mv.visitCode();
                            int slot = 0;
                            for (Type arg : Type.getArgumentTypes(descriptor)) {
                                mv.visitVarInsn(arg.getOpcode(Opcodes.ILOAD), slot);
                                slot += arg.getSize();
                            }
                            mv.visitMethodInsn(
                                    Opcodes.INVOKESTATIC, cache, method, descriptor, false);
                            mv.visitInsn(Type.getReturnType(descriptor).getOpcode(Opcodes.IRETURN));
                            mv.visitMaxs(0, 0);
                            mv.visitEnd();
                        }
                        super.visitEnd();
                    }
                },
                0);
        if (access[0] == -1 || (access[0] & Opcodes.ACC_STATIC) == 0) {
            throw new IllegalStateException("no static " + method + descriptor + " in this Flink");
        }
        return writer.toByteArray();
    }
}
