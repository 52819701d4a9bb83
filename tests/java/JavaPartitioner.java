import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.utils.Utils;

/**
 * Test oracle for the Java client's default partitioner on keyed records.
 *
 * <p>Usage: {@code JavaPartitioner <partitions> <key>...}
 *
 * <p>For each key (its UTF-8 bytes) prints one JSON line
 * {@code {"key":"k","murmur2":h,"partition":p}} where {@code h} is
 * {@code Utils.murmur2(bytes)} (signed 32-bit) and
 * {@code p = Utils.toPositive(h) % partitions}, which is what the Java
 * producer's BuiltInPartitioner.partitionForKey does for a non-null key.
 */
public final class JavaPartitioner {
    public static void main(String[] args) {
        if (args.length < 1) {
            System.err.println("usage: JavaPartitioner <partitions> <key>...");
            System.exit(2);
        }
        int partitions = Integer.parseInt(args[0]);
        if (partitions < 1) {
            System.err.println("partitions must be at least 1");
            System.exit(2);
        }
        for (int i = 1; i < args.length; i++) {
            byte[] key = args[i].getBytes(StandardCharsets.UTF_8);
            int hash = Utils.murmur2(key);
            int partition = Utils.toPositive(hash) % partitions;
            System.out.println("{\"key\":" + Json.str(args[i]) + ",\"murmur2\":" + hash
                    + ",\"partition\":" + partition + "}");
        }
    }
}
